"""The ``conforto`` command line: one thin command per stage."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

import conforto
from conforto.errors import ConfortoError
from conforto.settings import get_settings

if TYPE_CHECKING:
    from conforto.registry import Registry

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
model_app = typer.Typer(
    help="The model registry: register, list, promote, roll back.", no_args_is_help=True
)
app.add_typer(model_app, name="model")
tracking_app = typer.Typer(help="Experiment tracking.", no_args_is_help=True)
app.add_typer(tracking_app, name="tracking")

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
    str,
    typer.Option("--model", help="Model directory written by `conforto train`, or 'production'."),
]


def _model_dir(value: str) -> Path:
    """A model directory, or the production version's artifact (reconciled and verified)."""
    if value != "production":
        return Path(value)
    _, artifact = _registry().resolve("production")
    return artifact


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
    for name, split in metrics["random_split"].items():
        console.print(
            f"random 80/20 split, {name.replace('_', ' ')} (literature protocol, optimistic): "
            f"accuracy {split['accuracy']:.3f}",
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
        loaded = load_model(_model_dir(model))
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
        summary = predict_file(load_model(_model_dir(model)), input, output, metadata=metadata)
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
    """Run the main job end to end: validate → profile → train (grouped CV) → register.

    The first model ever registered also becomes the production version.
    """
    from conforto.pipeline import data_stage, train_stage
    from conforto.registry import open_registry
    from conforto.tracking import make_tracker

    with _errors():
        settings = get_settings()
        cfg = _load_train_config(config)
        m, d = _sources(measurements, metadata)
        tracker = make_tracker(settings)
        with console.status("data stage: load, validate, profile, features"):
            result = data_stage(
                m, d, _out(None, "reports"), tracker=tracker, outbox=settings.tracking_outbox
            )
        _print_validation(result.validation, result.reports)
        if not result.validation.ok:
            raise typer.Exit(1)
        target = _out(None, "models", "latest")
        console.print("training (building-grouped cross-validation, then the final model) ...")
        model = train_stage(
            result.frame,
            target,
            config=cfg,
            tracker=tracker,
            outbox=settings.tracking_outbox,
            sources={"measurements": str(m), "metadata": str(d)},
        )
        _report_model(target, model.manifest)
        registry = open_registry(settings)
        version, created = registry.register(target)
        console.print(
            f"registered as version {version.version}"
            if created
            else f"already registered as version {version.version}"
        )
        if registry.store.alias_version("production") is None:
            registry.promote(
                version.version, force=True, reason="first model", command="conforto run"
            )
            console.print(f"version {version.version} is now in production (first model)")


@contextmanager
def _errors() -> Iterator[None]:
    """Turn a :class:`ConfortoError` into one line on stderr and exit code 1."""
    try:
        yield
    except ConfortoError as exc:
        if _state["debug"]:
            raise
        raise _fail(str(exc)) from None


@app.command("serve")
def serve(
    model: Annotated[
        str | None, typer.Option("--model", help="Model directory, or 'production' (the default).")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)] = 1,
) -> None:
    """Serve predictions over HTTP (FastAPI + uvicorn); docs at /docs."""
    import os

    import uvicorn

    if model not in (None, "production"):
        os.environ["CONFORTO_SERVE__MODEL"] = str(Path(model).resolve())
        get_settings.cache_clear()
    uvicorn.run(
        "conforto.serving.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
    )


# ------------------------------------------------------------------------------------- registry


def _registry() -> Registry:
    """The registry, reconciled with its production alias (as every registry command starts)."""
    from conforto.registry import open_registry

    registry = open_registry(get_settings())
    with registry.locked():
        for line in registry.reconcile():
            err_console.print(f"[yellow]reconciled:[/] {line}", highlight=False)
    return registry


def _version_record(version: Any) -> dict[str, Any]:
    from datetime import UTC, datetime

    from conforto.registry import lifecycle_tags

    return {
        "version": version.version,
        "tags": lifecycle_tags(version.tags),
        "aliases": version.aliases,
        "created": datetime.fromtimestamp(version.created, UTC).isoformat(timespec="seconds"),
        "metrics": {
            k.removeprefix("metric."): float(v)
            for k, v in version.tags.items()
            if k.startswith("metric.")
        },
        "artifact": str(version.artifact) if version.artifact else version.source,
        "lineage": {
            k.removeprefix("lineage."): v
            for k, v in version.tags.items()
            if k.startswith("lineage.")
        },
        "rejected": version.tags.get("rejected"),
    }


@model_app.command("register")
def model_register(
    directory: Annotated[Path, typer.Argument(help="Model directory from `conforto train`.")],
) -> None:
    """Add a trained model as a new version (tag `training`, with lineage)."""
    with _errors():
        version, created = _registry().register(directory)
    verb = "registered" if created else "already registered"
    console.print(f"{verb}: version {version.version} ({directory})", highlight=False)


@model_app.command("list")
def model_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List every version with its lifecycle tags; production is marked."""
    with _errors():
        records = [_version_record(v) for v in _registry().store.versions()]
    if as_json:
        typer.echo(json.dumps(records, indent=2))
        return
    table = Table(title="conforto model versions")
    for col in ("", "version", "tags", "created", "macro-F1", "accuracy"):
        table.add_column(col)
    for r in records:
        star = "[bold green]●[/]" if "production" in r["aliases"] else ""
        m = r["metrics"]
        table.add_row(
            star,
            r["version"],
            ", ".join(r["tags"]),
            r["created"],
            f"{m.get('macro_f1', float('nan')):.3f}",
            f"{m.get('accuracy', float('nan')):.3f}",
        )
    console.print(table)
    console.print("● production", style="dim")


@model_app.command("show")
def model_show(
    version: Annotated[str, typer.Argument(help="Version number or 'production'.")],
) -> None:
    """Show one version: tags, lineage, metrics and artifact."""
    with _errors():
        found, _ = _registry().resolve(version)
        record = _version_record(found)
    typer.echo(json.dumps(record, indent=2))


@model_app.command("promote")
def model_promote(
    version: Annotated[str, typer.Argument(help="Version to put in production.")],
    force: Annotated[bool, typer.Option("--force", help="Promote even if not validated.")] = False,
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "",
) -> None:
    """Make a version the production version (only `validated` ones, unless --force)."""
    with _errors():
        move = _registry().promote(
            version, force=force, reason=reason, command="conforto model promote"
        )
    if move is None:
        console.print(f"version {version} already is in production")
    else:
        console.print(f"production: version {move.previous or '-'} → {move.to}", highlight=False)


@model_app.command("rollback")
def model_rollback(
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "",
) -> None:
    """Put back the previous production version (repeat to keep stepping back)."""
    with _errors():
        move = _registry().rollback(reason=reason, command="conforto model rollback")
    console.print(f"production: version {move.previous} → {move.to}", highlight=False)


@model_app.command("audit")
def model_audit() -> None:
    """Print the audit log of promotions and rollbacks."""
    with _errors():
        moves = _registry().audit()
    table = Table(title="production moves")
    for col in ("time", "action", "from", "to", "reason", "command", "user"):
        table.add_column(col)
    for m in moves:
        table.add_row(m.time, m.action, m.previous or "-", m.to, m.reason, m.command, m.user)
    console.print(table)


@tracking_app.command("retry")
def tracking_retry() -> None:
    """Send tracker calls that failed earlier (kept in CONFORTO_HOME/tracking/outbox.jsonl)."""
    from conforto.tracking import make_tracker, replay_outbox

    with _errors():
        settings = get_settings()
        sent = replay_outbox(make_tracker(settings), settings.tracking_outbox)
    console.print(f"sent {sent} kept calls" if sent else "nothing to send")
