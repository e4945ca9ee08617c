"""``conforto monitor``: is the production model still fit for what it is asked?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from conforto.cli import render
from conforto.cli.common import ConfigOpt, console, errors, out_dir, pipeline_config
from conforto.settings import get_settings

app = typer.Typer(
    help="Watch the model in production: input drift, live performance.", no_args_is_help=True
)

ServedOpt = Annotated[
    str,
    typer.Option(
        "--model", help="Model directory, or 'production' (the version served, by its pointer)."
    ),
]
InputOpt = Annotated[
    Path | None,
    typer.Option(
        "--input",
        help="Judge this file (csv, csv.gz, parquet; any resolvable column names) instead of "
        "the prediction log.",
    ),
]
MetadataOpt = Annotated[
    Path | None, typer.Option("--metadata", help="Building metadata joined to --input.")
]
SinceOpt = Annotated[
    str,
    typer.Option(help="Start of the prediction-log window: a duration ago (7d, 12h) or a time."),
]
UntilOpt = Annotated[
    str | None, typer.Option(help="End of the window (default: now), like --since.")
]
PushOpt = Annotated[
    str | None,
    typer.Option(
        "--push",
        help="Push the results as gauges to this Prometheus Pushgateway, e.g. "
        "http://127.0.0.1:9091.",
    ),
]


def served_model(value: str) -> tuple[Path, str | None]:
    """A model directory and its registry version: ``production`` is read through the pointer
    (as the service reads it, without MLflow)."""
    if value != "production":
        return Path(value), None
    from conforto.pointer import production_artifact

    pointer, directory = production_artifact(get_settings().registry_dir)
    return directory, pointer.version


def current_source(input: Path | None, metadata: Path | None, since: str, until: str | None):  # type: ignore[no-untyped-def]
    """The window judged: the file, or the span of the prediction log."""
    from conforto.monitor.window import FileSource, LogSource, Span

    if input is not None:
        return FileSource(input, metadata)
    return LogSource(get_settings().prediction_log_url, Span.parse(since, until))


def reading() -> Progress:
    """A progress display for rows read from a window of unknown length."""
    return Progress(
        SpinnerColumn(),
        TextColumn("reading {task.description}: {task.completed:,.0f} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


@app.command("drift")
def drift(
    model: ServedOpt = "production",
    input: InputOpt = None,
    metadata: MetadataOpt = None,
    since: SinceOpt = "7d",
    until: UntilOpt = None,
    baseline_since: Annotated[
        str | None,
        typer.Option(help="Compare with this earlier window of the log, not the training data."),
    ] = None,
    baseline_until: Annotated[
        str | None, typer.Option(help="End of the baseline window (default: --since).")
    ] = None,
    season_matched: Annotated[
        bool,
        typer.Option(
            "--season-matched", help="Weigh the baseline to the window's seasons (or months)."
        ),
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Report folder. Default: CONFORTO_HOME/reports/drift.")
    ] = None,
    config: ConfigOpt = None,
    fail_on_drift: Annotated[
        bool, typer.Option("--fail-on-drift", help="Exit 1 when the data set has drifted.")
    ] = False,
    push: PushOpt = None,
) -> None:
    """Compare the inputs of a window with the model's training data (or an earlier window).

    Writes drift.json and drift.html. Exits 0 whatever it finds, unless --fail-on-drift.
    """
    from conforto.artifact import load_model
    from conforto.monitor.drift import check_drift, write_drift
    from conforto.monitor.window import LogSource, Span

    with errors():
        directory, version = served_model(model)
        loaded = load_model(directory)
        current = current_source(input, metadata, since, until)
        baseline = None
        if baseline_since is not None:
            end = baseline_until or (since if input is None else None)
            span = Span.parse(baseline_since, end)
            baseline = LogSource(get_settings().prediction_log_url, span)
        with reading() as bar:
            task = bar.add_task("the window")
            report, before, now = check_drift(
                loaded,
                current,
                baseline=baseline,
                season_matched=season_matched,
                config=pipeline_config(config).monitor,
                model_version=version,
                on_chunk=lambda rows: bar.advance(task, rows),
            )
        paths = write_drift(report, before, now, out_dir(out, "reports", "drift"))
        if push is not None:
            from conforto.monitor.push import drift_gauges, push_gauges

            push_gauges(push, "drift", drift_gauges(report))
    render.drift(report)
    console.print(f"report: {paths['drift.html']}", highlight=False)
    if fail_on_drift and report.dataset_drift:
        raise typer.Exit(1)


@app.command("performance")
def performance(
    model: ServedOpt = "production",
    input: Annotated[
        Path | None,
        typer.Option(
            "--input",
            help="Judge this file (its rows scored by the model; votes from its "
            "thermal_sensation column) instead of the prediction log and its feedback.",
        ),
    ] = None,
    metadata: MetadataOpt = None,
    since: SinceOpt = "7d",
    until: UntilOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Report folder. Default: CONFORTO_HOME/reports/performance."),
    ] = None,
    config: ConfigOpt = None,
    push: PushOpt = None,
) -> None:
    """Estimate the model's accuracy from its probabilities, and measure it on the votes.

    Writes performance.json and performance.html; exits 0 whatever it finds.
    """
    from conforto.artifact import load_model
    from conforto.monitor.performance import check_performance, write_performance

    with errors():
        directory, version = served_model(model)
        loaded = load_model(directory)
        with reading() as bar:
            task = bar.add_task("the window")
            result, scored = check_performance(
                loaded,
                current_source(input, metadata, since, until),
                config=pipeline_config(config).monitor,
                model_version=version,
                on_chunk=lambda rows: bar.advance(task, rows),
            )
        paths = write_performance(result, scored, out_dir(out, "reports", "performance"))
        if push is not None:
            from conforto.monitor.push import performance_gauges, push_gauges

            push_gauges(push, "performance", performance_gauges(result))
    render.performance(result)
    console.print(f"report: {paths['performance.html']}", highlight=False)
