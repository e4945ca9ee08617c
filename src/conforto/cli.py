"""The ``conforto`` command line: one thin command per stage."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

import conforto
from conforto.errors import ConfortoError
from conforto.settings import get_settings

app = typer.Typer(
    name="conforto",
    help="Predict occupants' thermal sensation; validate data, train, serve, monitor.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(
    help="Download, validate and profile thermal-comfort data.", no_args_is_help=True
)
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}

MeasurementsOpt = Annotated[
    Path | None,
    typer.Option(
        "--measurements",
        help="Measurements file (csv, csv.gz, parquet). "
        "Default: CONFORTO_MEASUREMENTS, else the official file, downloaded once.",
    ),
]
MetadataOpt = Annotated[
    Path | None,
    typer.Option(
        "--metadata",
        help="Building metadata file. Default: CONFORTO_METADATA, else the "
        "official file, downloaded once.",
    ),
]


def _out(out: Path | None, *parts: str) -> Path:
    return out if out is not None else get_settings().home.joinpath(*parts)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def _version(value: bool) -> None:
    if value:
        console.print(f"conforto {conforto.__version__}")
        raise typer.Exit


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """conforto: thermal sensation prediction with a complete MLOps lifecycle."""
    _state["debug"] = debug
    logging.basicConfig(
        level=logging.INFO if debug else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=False)],
        force=True,
    )


def _sources(measurements: Path | None, metadata: Path | None) -> tuple[Path, Path]:
    from conforto.download import resolve_sources

    return resolve_sources(get_settings(), measurements, metadata)


def _print_validation(report: object, paths: dict[str, Path]) -> None:
    from conforto.validation import ValidationReport

    assert isinstance(report, ValidationReport)  # noqa: S101 - narrowing for mypy
    table = Table(title="Checks that did not pass", show_lines=False)
    for col in ("status", "check", "rule", "rows"):
        table.add_column(col, justify="right" if col == "rows" else "left")
    for check in report.failed + report.warnings:
        colour = "red" if check.status == "fail" else "yellow"
        table.add_row(f"[{colour}]{check.status}[/]", check.name, check.rule, str(check.rows))
    if table.row_count:
        console.print(table)
    console.print(report.summary(), highlight=False)
    for name, path in paths.items():
        console.print(f"  {name}: {path}", highlight=False)


@data_app.command("download")
def data_download(
    out: Annotated[
        Path | None, typer.Option(help="Folder for the files. Default: CONFORTO_HOME/cache.")
    ] = None,
) -> None:
    """Download the official ASHRAE Global Thermal Comfort Database II files, verified."""
    from conforto.download import download_official

    with _errors():
        paths = download_official(get_settings(), out=out)
    for name, path in paths.items():
        console.print(f"{name}: {path}", highlight=False)


@data_app.command("validate")
def data_validate(
    measurements: MeasurementsOpt = None,
    metadata: MetadataOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for validation.json/html. Default: CONFORTO_HOME/reports."),
    ] = None,
) -> None:
    """Validate the data: physical bounds, required columns, nulls, duplicates, categories.

    Exits 1 when a check fails (warnings are allowed).
    """
    from conforto.data import load_dataset
    from conforto.validation import validate_dataset, write_validation

    with _errors():
        m, d = _sources(measurements, metadata)
        report = validate_dataset(load_dataset(m, d, required=()))
        json_path, html_path = write_validation(report, _out(out, "reports"))
    _print_validation(report, {"json": json_path, "html": html_path})
    if not report.ok:
        raise typer.Exit(1)


@data_app.command("profile")
def data_profile(
    measurements: MeasurementsOpt = None,
    metadata: MetadataOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for profile.json/html. Default: CONFORTO_HOME/reports."),
    ] = None,
) -> None:
    """Write per-column statistics and histograms (the reference for drift checks)."""
    from conforto.data import ensure_group_column, load_dataset
    from conforto.profile import profile_frame, write_profile

    with _errors():
        m, d = _sources(measurements, metadata)
        frame = ensure_group_column(load_dataset(m, d, required=()).frame)
        json_path, html_path = write_profile(profile_frame(frame), _out(out, "reports"))
    console.print(
        f"profile of {len(frame)} rows\n  json: {json_path}\n  html: {html_path}", highlight=False
    )


ModelOpt = Annotated[
    Path, typer.Option("--model", help="Model directory written by `conforto train`.")
]


def _summary_table(summary: dict[str, Any], title: str) -> Table:
    """Model vs PMV vs majority on the same rows."""
    table = Table(title=title)
    for col in ("", "rows", "accuracy", "macro-F1", "log loss", "Brier", "ECE"):
        table.add_column(col, justify="left" if not col else "right")

    def add(name: str, m: dict[str, float], probabilistic: bool = True) -> None:
        cells = [
            f"{m[k]:.3f}" if probabilistic or k in ("accuracy", "macro_f1") else "-"
            for k in ("accuracy", "macro_f1", "log_loss", "brier", "ece")
        ]
        table.add_row(name, f"{int(m['rows'])}", *cells)

    add("model", summary["model"])
    add("majority class", summary["majority"])
    add("model, rows with PMV", summary["pmv_rows"]["model"])
    add("PMV binned, rows with PMV", summary["pmv_rows"]["pmv"], probabilistic=False)
    add("probabilistic PMV", summary["pmv_rows"]["probabilistic_pmv"])
    return table


def _load_train_config(path: Path | None) -> Any:
    from conforto.train import TrainConfig

    if path is None:
        return TrainConfig()
    from conforto.config import load_yaml_model

    return load_yaml_model(path, TrainConfig)


@app.command("train")
def train(
    measurements: MeasurementsOpt = None,
    metadata: MetadataOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Model directory to create. Default: CONFORTO_HOME/models/latest."),
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Training config (YAML).")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing model directory.")
    ] = False,
) -> None:
    """Train the thermal-sensation model with building-grouped cross-validation."""
    from conforto.data import load_dataset
    from conforto.train import train_model

    with _errors():
        cfg = _load_train_config(config)
        target = _out(out, "models", "latest")
        if target.exists() and not force:
            raise _fail(
                f"{target} already exists: choose another --out or pass --force to replace it."
            )
        m, d = _sources(measurements, metadata)
        dataset = load_dataset(m, d)
        model = train_model(
            dataset.frame,
            target,
            config=cfg,
            force=force,
            sources={"measurements": str(m), "metadata": str(d)},
        )
    _report_model(target, model.manifest)


def _report_model(target: Path, manifest: dict[str, Any]) -> None:
    metrics = json.loads((target / "metrics.json").read_text())
    console.print(_summary_table(metrics["cv"], "Cross-validation, grouped by building"))
    split = metrics["random_split"]
    console.print(
        f"random 80/20 split (literature protocol, optimistic): accuracy {split['accuracy']:.3f}",
        highlight=False,
    )
    console.print(f"model: {target}\nreport: {target / 'report.html'}", highlight=False)


@app.command("evaluate")
def evaluate(
    model: ModelOpt,
    measurements: MeasurementsOpt = None,
    metadata: MetadataOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="Report folder. Default: CONFORTO_HOME/reports/evaluation.")
    ] = None,
) -> None:
    """Score a trained model on other labelled data (for example unseen buildings)."""
    from conforto.artifact import load_model
    from conforto.data import load_dataset
    from conforto.evaluate import evaluate_model, write_evaluation

    with _errors():
        loaded = load_model(model)
        m, d = _sources(measurements, metadata)
        metrics = evaluate_model(loaded, load_dataset(m, d).frame, seed=get_settings().seed)
        target = _out(out, "reports", "evaluation")
        paths = write_evaluation(
            metrics, target, manifest=loaded.manifest, title=f"Evaluation on {m.name}"
        )
    console.print(_summary_table(metrics["holdout"], f"Evaluation on {m.name}"))
    console.print(f"report: {paths['report.html']}", highlight=False)


@app.command("predict")
def predict(
    model: ModelOpt,
    input: Annotated[Path, typer.Option("--input", help="CSV of observations (database format).")],
    output: Annotated[Path, typer.Option("--output", help="CSV to write the predictions to.")],
    metadata: Annotated[
        Path | None, typer.Option("--metadata", help="Building metadata to join on building_id.")
    ] = None,
) -> None:
    """Score a CSV file: one output row per input row, in order."""
    from conforto.artifact import load_model
    from conforto.predict import predict_file

    with _errors():
        summary = predict_file(load_model(model), input, output, metadata=metadata)
    console.print(
        f"{summary.rows} rows: {summary.scored} scored, {summary.rows - summary.scored} not "
        f"scored (see 'reason'), {summary.flagged} flagged\noutput: {output}",
        highlight=False,
    )


@app.command("run")
def run(
    measurements: MeasurementsOpt = None,
    metadata: MetadataOpt = None,
    config: Annotated[Path | None, typer.Option(help="Training config (YAML).")] = None,
) -> None:
    """Run the main job end to end: validate → profile → train (grouped CV) → report."""
    from conforto.data import load_dataset
    from conforto.pipeline import data_stage
    from conforto.train import train_model

    with _errors():
        cfg = _load_train_config(config)
        m, d = _sources(measurements, metadata)
        with console.status("data stage: load, validate, profile, features"):
            result = data_stage(m, d, _out(None, "reports"))
        _print_validation(result.validation, result.reports)
        if not result.validation.ok:
            raise typer.Exit(1)
        target = _out(None, "models", "latest")
        console.print("training (building-grouped cross-validation, then the final model) ...")
        model = train_model(
            load_dataset(m, d).frame,
            target,
            config=cfg,
            force=True,
            sources={"measurements": str(m), "metadata": str(d)},
        )
    _report_model(target, model.manifest)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn a :class:`ConfortoError` into one line on stderr and exit code 1."""
    try:
        yield
    except ConfortoError as exc:
        if _state["debug"]:
            raise
        raise _fail(str(exc)) from None
