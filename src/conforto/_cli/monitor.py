"""``conforto monitor``: whether the production model is still fit for what it is asked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from conforto._cli import render
from conforto._cli.common import (
    ConfigOpt,
    console,
    errors,
    out_dir,
    pipeline_config,
    refresh_production,
)
from conforto._cli.notify import tell
from conforto._settings import get_settings
from conforto.errors import QuietWindow

if TYPE_CHECKING:
    from conforto._monitor.window import Source

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


TrainingOpt = Annotated[
    Path | None,
    typer.Option(
        "--measurements",
        help="Training measurements for --retrain. Default: CONFORTO_MEASUREMENTS, else the "
        "official file.",
    ),
]
TrainingMetadataOpt = Annotated[
    Path | None,
    typer.Option("--metadata", help="Training metadata for --retrain (like --measurements)."),
]


IfPresentOpt = Annotated[
    bool,
    typer.Option(
        "--if-present",
        help="With --model production and nothing in production yet (a new project's first "
        "run): say so and exit 0 instead of 3.",
    ),
]


def served_model(value: str, *, if_present: bool = False) -> tuple[Path, str | None]:
    """A model directory and its registry version: ``production`` is read through the pointer
    (as the service reads it, without MLflow).

    Raises
    ------
    typer.Exit
        Code 0, after saying so, when there is no production model and ``if_present`` is set.
    """
    if value != "production":
        return Path(value), None
    from conforto._registry.pointer import production_artifact
    from conforto.errors import NoProductionModel

    try:
        refreshed = refresh_production()  # from the tracking server, when there is one
        if refreshed is not None:
            return refreshed
        pointer, directory = production_artifact(get_settings().registry_dir)
    except NoProductionModel:
        if not if_present:
            raise
        console.print("no production model yet: nothing to judge (skipped, --if-present)")
        raise typer.Exit(0) from None
    return directory, pointer.version


def current_source(
    input_file: Path | None, metadata: Path | None, since: str, until: str | None
) -> Source:
    """The window judged: the file, or the span of the prediction log."""
    from conforto._monitor.window import FileSource, LogSource, Span

    if input_file is not None:
        return FileSource(input_file, metadata)
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


def _quiet(quiet: QuietWindow, monitor: str, version: str, push: str | None) -> None:
    """A window with no prediction: said once, the monitor's gauges pushed with 0 rows, nothing
    told to Slack, exit 0 (a quiet day is not a failure).
    """
    if push is not None:
        from conforto._monitor.gauges import push_gauges, quiet_gauges

        push_gauges(push, monitor, quiet_gauges(version))
    console.print(str(quiet), highlight=False)


@app.command("drift")
def drift(
    model: ServedOpt = "production",
    input_file: InputOpt = None,
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
    if_present: IfPresentOpt = False,
) -> None:
    """Compare the inputs of a window with the model's training data (or an earlier window).

    Writes drift.json and drift.html. Exits 0 whatever it finds, unless --fail-on-drift.
    """
    from conforto._model.artifact import load_model
    from conforto._monitor.drift import check_drift, drift_message, write_drift
    from conforto._monitor.window import LogSource, Span

    with errors():
        directory, version = served_model(model, if_present=if_present)
        loaded = load_model(directory)
        current = current_source(input_file, metadata, since, until)
        baseline = None
        if baseline_since is not None:
            end = baseline_until or (since if input_file is None else None)
            span = Span.parse(baseline_since, end)
            baseline = LogSource(get_settings().prediction_log_url, span)
        try:
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
        except QuietWindow as quiet:
            _quiet(quiet, "drift", version or loaded.version, push)
            return
        paths = write_drift(report, before, now, out_dir(out, "reports", "drift"))
        if push is not None:
            from conforto._monitor.gauges import drift_gauges, push_gauges

            push_gauges(push, "drift", drift_gauges(report))
    render.drift(report)
    console.print(f"report: {paths['drift.html']}", highlight=False)
    if report.dataset_drift:
        tell(drift_message(report))
    if fail_on_drift and report.dataset_drift:
        raise typer.Exit(1)


@app.command("performance")
def performance(
    model: ServedOpt = "production",
    input_file: Annotated[
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
    if_present: IfPresentOpt = False,
) -> None:
    """Estimate the model's accuracy from its probabilities, and measure it on the votes.

    Writes performance.json and performance.html; exits 0 whatever it finds.
    """
    from conforto._model.artifact import load_model
    from conforto._monitor.performance import check_performance
    from conforto._monitor.performance_report import performance_message, write_performance

    with errors():
        directory, version = served_model(model, if_present=if_present)
        loaded = load_model(directory)
        try:
            with reading() as bar:
                task = bar.add_task("the window")
                result, scored = check_performance(
                    loaded,
                    current_source(input_file, metadata, since, until),
                    config=pipeline_config(config).monitor,
                    model_version=version,
                    on_chunk=lambda rows: bar.advance(task, rows),
                )
        except QuietWindow as quiet:
            _quiet(quiet, "performance", version or loaded.version, push)
            return
        paths = write_performance(result, scored, out_dir(out, "reports", "performance"))
        if push is not None:
            from conforto._monitor.gauges import performance_gauges, push_gauges

            push_gauges(push, "performance", performance_gauges(result))
    render.performance(result)
    console.print(f"report: {paths['performance.html']}", highlight=False)
    if result.degraded:
        tell(performance_message(result))


@app.command("export-feedback")
def export_feedback(
    out: Annotated[Path, typer.Option("--out", help="CSV to write (the database's format).")],
    since: Annotated[
        str | None, typer.Option(help="Only predictions answered since then (default: all).")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            help="Only predictions answered, and votes given, before then (default: now), e.g. "
            "a run's start: the same votes write the same file."
        ),
    ] = None,
) -> None:
    """Write every voted prediction of the log as a training row (building_id: its site, else
    its day), for `conforto train --extra-data` and `conforto pipeline run --extra-data`.
    """
    from conforto._monitor.feedback import export_feedback as export
    from conforto._monitor.window import parse_when

    with errors():
        when = parse_when(since) if since else None
        end = parse_when(until) if until else None
        with reading() as bar:
            task = bar.add_task("the prediction log")
            rows = export(
                get_settings().prediction_log_url,
                out,
                since=when,
                until=end,
                on_chunk=lambda n: bar.advance(task, n),
            )
    console.print(f"{rows:,} voted predictions written to {out}", highlight=False)


@app.command("compare")
def compare(
    since: SinceOpt = "7d",
    until: UntilOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Report folder. Default: CONFORTO_HOME/reports/compare."),
    ] = None,
    reps: Annotated[int, typer.Option(help="Bootstrap replicates.", min=100, max=20_000)] = 1000,
) -> None:
    """Compare production with the shadow and canary challengers of a window of the prediction
    log: agreement, class mix and, from the votes, each one's accuracy and macro-F1 with a
    bootstrap interval of the difference. Writes compare.json and compare.html.
    """
    from conforto._monitor.compare import compare as compare_models
    from conforto._monitor.compare import write_compare
    from conforto._monitor.window import Span

    with errors():
        with console.status("reading the prediction log"):
            report = compare_models(
                get_settings().prediction_log_url, Span.parse(since, until), reps=reps
            )
        paths = write_compare(report, out_dir(out, "reports", "compare"))
    render.compare(report)
    console.print(f"report: {paths['compare.html']}", highlight=False)


@app.command("adaptation")
def adaptation(
    site: Annotated[
        str | None, typer.Option(help="Show every state of this site (its audit trail).")
    ] = None,
    version: Annotated[
        str | None, typer.Option("--model-version", help="Only this model version's states.")
    ] = None,
) -> None:
    """Site adaptation as the service learned it from the prediction log: each site's current
    state (votes learned, the last vote's id, when, how much warmer its answers are made), or
    with --site every state that site has had.
    """
    from conforto._monitor.window import log_connection
    from conforto._predictions.adaptations import state_changes

    with errors(), log_connection(get_settings().prediction_log_url) as conn:
        changes = state_changes(conn, model_version=version, site=site)
    if site is None:  # the current state of each (model version, site)
        changes = list({(c.model_version, c.state.site): c for c in changes}.values())
    render.adaptation(changes, trail=site is not None)


@app.command("check")
def check(
    model: ServedOpt = "production",
    since: SinceOpt = "7d",
    retrain: Annotated[
        bool, typer.Option("--retrain", help="When retraining is due, run the gated pipeline.")
    ] = False,
    config: ConfigOpt = None,
    measurements: TrainingOpt = None,
    metadata: TrainingMetadataOpt = None,
    if_present: IfPresentOpt = False,
) -> None:
    """Decide whether to retrain: drift on the model's main inputs, degraded performance, or
    enough new votes (thresholds under `monitor:`); record and notify the decision.

    A due retraining starts at most once per `monitor.retrain_cooldown_hours` and not while a
    training run is under way (the tracking server's runs say): held, it is printed, not
    notified. With --retrain a started retraining runs the gated pipeline on the training data
    and the exported votes: it promotes only what its gate validates.
    """
    from functools import partial

    from conforto._model.artifact import load_model
    from conforto._monitor.check import check_message, check_model
    from conforto._tracking import make_tracker
    from conforto._tracking.mlflow import runs_since

    with errors():
        settings = get_settings()
        cfg = pipeline_config(config)
        directory, version = served_model(model, if_present=if_present)
        reports = settings.home / "reports"
        decision, path = check_model(
            load_model(directory),
            current_source(None, None, since, None),
            cfg.monitor,
            reports,
            model_version=version,
            tracker=make_tracker(settings, cfg.tracking),
            outbox=settings.tracking_outbox,
            history=partial(runs_since, settings.mlflow_uri, settings.tracking.experiment),
        )
    verdict = "[bold]retrain[/]" if decision.retrain else "no retraining needed"
    console.print(f"model {decision.model_version}: {verdict}", highlight=False)
    for reason in decision.reasons:
        console.print(f"  • {reason}", highlight=False)
    if decision.held:
        console.print(f"not starting it: {decision.held}", highlight=False)
    console.print(f"decision: {path}", highlight=False)
    if decision.start_training:
        tell(check_message(decision))
    if retrain and decision.start_training:
        _retrain(cfg, measurements, metadata, reports / "check" / "feedback.csv")


def _retrain(config: Any, measurements: Path | None, metadata: Path | None, votes: Path) -> None:
    from conforto._cli.train import run_and_report
    from conforto._monitor.feedback import export_feedback as export

    with errors():
        rows = export(get_settings().prediction_log_url, votes)
    console.print(
        f"retraining with {rows:,} occupants' votes beside the training data", highlight=False
    )
    run_and_report(measurements, metadata, config, extra=votes if rows else None)
