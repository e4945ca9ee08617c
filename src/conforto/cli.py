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
pipeline_app = typer.Typer(help="The gated training pipeline.", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")
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


@app.command("train")
def train(
    measurements: MeasurementsOpt = None,
    metadata: MetadataOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Model directory to create. Default: CONFORTO_HOME/models/latest."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Pipeline config (YAML); its `train:` section is used.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing model directory.")
    ] = False,
) -> None:
    """Train the thermal-sensation model with building-grouped cross-validation."""
    from conforto.data import load_dataset
    from conforto.train import train_model

    with _errors():
        cfg = _load_pipeline_config(config).train
        target = _out(out, "models", "latest")
        if target.exists() and not force:
            raise _fail(
                f"{target} already exists: choose another --out or pass --force to replace it."
            )
        m, d = _sources(measurements, metadata)
        dataset = load_dataset(m, d)
        train_model(
            dataset.frame,
            target,
            config=cfg,
            force=force,
            sources={"measurements": str(m), "metadata": str(d)},
        )
    _report_model(target)


def _report_model(target: Path) -> None:
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


def _load_pipeline_config(path: Path | None) -> Any:
    from conforto.pipeline import PipelineConfig

    if path is None:
        return PipelineConfig()
    from conforto.config import load_yaml_model

    return load_yaml_model(path, PipelineConfig)


def _print_gate(report: Any, paths: dict[str, Path]) -> None:
    """Model vs champion vs baselines, every check with its verdict, and the report's path."""
    table = Table(title=f"Gate, version {report.version}: model vs champion vs PMV")
    keys = ("macro_f1", "macro_f1_pmv_rows", "log_loss", "log_loss_pmv_rows")
    for col in ("", "macro-F1", "macro-F1, PMV rows", "log loss", "log loss, PMV rows"):
        table.add_column(col, justify="left" if not col else "right")
    for name, m in report.comparison.items():
        label = f"champion (v{report.champion})" if name == "champion" else name.replace("_", " ")
        table.add_row(label, *(f"{m[k]:.3f}" if k in m else "" for k in keys))
    checks = Table(title="checks", show_header=False)
    for check in report.checks:
        verdict = "[green]pass[/]" if check.passed else "[bold red]FAIL[/]"
        checks.add_row(verdict, check.name, check.detail)
    console.print(table)
    console.print(checks)
    console.print(f"gate report: {paths['gate.html']}", highlight=False)


@pipeline_app.command("run")
def pipeline_run(
    measurements: MeasurementsOpt = None,
    metadata: MetadataOpt = None,
    config: Annotated[
        Path | None, typer.Option(help="Pipeline config (YAML): train, gate, tracking.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Train anew even if this data, code and config ran.")
    ] = False,
) -> None:
    """Validate data → profile → train → register → gate → promote if validated.

    Re-running with unchanged data, code and config reuses the registered version. Exits 1 when
    the data fails validation or the gate rejects the model (production then stays as it was).
    """
    from conforto.pipeline import run_pipeline
    from conforto.tracking import make_tracker

    with _errors():
        settings = get_settings()
        cfg = _load_pipeline_config(config)
        m, d = _sources(measurements, metadata)
        result = run_pipeline(
            _registry(),
            m,
            d,
            settings.home,
            cfg,
            tracker=make_tracker(settings, cfg.tracking),
            outbox=settings.tracking_outbox,
            force=force,
            notify=lambda line: console.print(f"[bold]▸[/] {line}", highlight=False),
        )
    _print_validation(result.data.validation, result.data.reports)
    if not result.data.validation.ok:
        raise typer.Exit(1)
    if result.model_dir is not None:
        _report_model(result.model_dir)
    if result.gate is not None:
        _print_gate(result.gate, result.gate_paths)
    if result.promoted is not None:
        console.print(
            f"production: version {result.promoted.previous or '-'} → {result.promoted.to}",
            highlight=False,
        )
    console.print(f"production version: {result.production or 'none'}", highlight=False)
    if result.gate is not None and not result.gate.passed:
        raise _fail(f"version {result.version} rejected: {result.gate.reason()}")


@app.command("validate-model")
def validate_model(
    version: Annotated[str, typer.Argument(help="Registered version to judge.")],
    measurements: MeasurementsOpt = None,
    metadata: MetadataOpt = None,
    config: Annotated[
        Path | None, typer.Option(help="Pipeline config (YAML) whose `gate:` holds thresholds.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Report folder. Default: CONFORTO_HOME/reports/gate-v<VERSION>."),
    ] = None,
) -> None:
    """The promotion gate: tag VERSION `validated`, or `rejected` with the failed checks.

    Compares with the baselines and, when there is one, the production champion on the same
    building-grouped folds (paired bootstrap over buildings), slices and the behavioural suite.
    The data is read only when the champion must be refitted on the challenger's folds.
    """
    from conforto.data import load_dataset
    from conforto.pipeline import gate_stage
    from conforto.tracking import make_tracker

    with _errors():
        settings = get_settings()
        cfg = _load_pipeline_config(config)

        def data() -> Any:
            return load_dataset(*_sources(measurements, metadata)).frame

        report, paths = gate_stage(
            _registry(),
            version,
            cfg.gate,
            _out(out, "reports", f"gate-v{version}"),
            data=data,
            tracker=make_tracker(settings, cfg.tracking),
            outbox=settings.tracking_outbox,
        )
    _print_gate(report, paths)
    if not report.passed:
        raise _fail(f"version {report.version} rejected: {report.reason()}")
    console.print(f"version {report.version} validated", highlight=False)


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
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import tempfile

        # every worker writes its metric samples here; /metrics adds them up
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="conforto-metrics-")
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
    for col in ("", "version", "tags", "created", "macro-F1", "accuracy", "gate"):
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
            f"[red]rejected:[/] {r['rejected']}" if r["rejected"] else "",
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


@tracking_app.command("import-offline")
def tracking_import_offline() -> None:
    """Send ClearML offline sessions to the server in CLEARML_API_HOST; register their models.

    Models go to ClearML's registry with the lifecycle tags they carry now in the registry.
    Imported sessions are marked and skipped next time.
    """
    import os

    from conforto.registry import lifecycle_tags
    from conforto.tracking.clearml import import_offline_sessions

    with _errors():
        registry = _registry()

        def lifecycle(sha: str) -> list[str]:
            for version in registry.store.versions():
                if version.tags.get("artifact_sha256") == sha:
                    return lifecycle_tags(version.tags)
            return ["training"]

        cache = Path(os.environ.get("CLEARML_CACHE_DIR", Path.home() / ".clearml" / "cache"))
        done = import_offline_sessions(cache, lifecycle)
    for session, task_id in done:
        console.print(f"{session.name} → task {task_id}", highlight=False)
    console.print(f"imported {len(done)} sessions" if done else "no offline sessions to import")
