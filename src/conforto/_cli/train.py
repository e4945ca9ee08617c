"""Training commands: ``train``, ``evaluate``, ``predict``, ``gate``, ``pipeline run``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from conforto._cli import render
from conforto._cli.common import (
    ConfigOpt,
    MeasurementsOpt,
    MetadataOpt,
    ModelOpt,
    console,
    errors,
    fail,
    model_dir,
    open_registry,
    out_dir,
    pipeline_config,
    sources,
)
from conforto._cli.notify import tell
from conforto._registry.audit import move_message
from conforto._settings import DEFAULT_LEVEL, MAX_LEVEL, MIN_LEVEL, get_settings

if TYPE_CHECKING:
    from conforto._lifecycle.pipeline import PipelineConfig, PipelineResult

#: ``--extra-data``: the service's voted predictions, trained on beside the official data.
ExtraDataOpt = Annotated[
    Path | None,
    typer.Option(
        "--extra-data",
        help="More training rows in the database's format, e.g. occupants' votes from "
        "`conforto monitor export-feedback` (grouped by their building_id).",
    ),
]
pipeline_app = typer.Typer(help="The gated training pipeline.", no_args_is_help=True)


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
    extra_data: ExtraDataOpt = None,
) -> None:
    """Train the thermal-sensation model with building-grouped cross-validation.

    On the official data, and on the occupants' votes of --extra-data when given.
    """
    from conforto._data.load import load_training_data
    from conforto._lifecycle.stages import train_stage
    from conforto._tracking import make_tracker

    with errors():
        settings, cfg = get_settings(), pipeline_config(config)
        target = out_dir(out, "models", "latest")
        if target.exists() and not force:
            raise fail(
                f"{target} already exists: choose another --out or pass --force to replace it."
            )
        m, d = sources(measurements, metadata)
        dataset = load_training_data(m, d, extra_data)
        train_stage(
            dataset.frame,
            target,
            config=cfg.train,
            tracker=make_tracker(settings, cfg.tracking),
            outbox=settings.tracking_outbox,
            sources={role: str(path) for role, path in dataset.sources.items()},
            votes=dataset.votes,
        )
    render.trained_model(target)


def evaluate(
    model: ModelOpt,
    measurements: MeasurementsOpt = None,
    metadata: MetadataOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="Report folder. Default: CONFORTO_HOME/reports/evaluation.")
    ] = None,
) -> None:
    """Score a trained model on other labelled data (for example unseen buildings)."""
    from conforto._data.load import load_dataset
    from conforto._model.artifact import load_model
    from conforto._training.evaluate import evaluate_model, write_evaluation

    with errors():
        loaded = load_model(model_dir(model))
        m, d = sources(measurements, metadata)
        metrics = evaluate_model(loaded, load_dataset(m, d).frame, seed=get_settings().seed)
        paths = write_evaluation(
            metrics,
            out_dir(out, "reports", "evaluation"),
            manifest=loaded.manifest,
            title=f"Evaluation on {m.name}",
        )
    console.print(render.summary_table(metrics["holdout"], f"Evaluation on {m.name}"))
    render.estimate_line(metrics["holdout"].get("estimate"))
    console.print(f"report: {paths['report.html']}", highlight=False)


def predict(
    model: ModelOpt,
    input_file: Annotated[
        Path, typer.Option("--input", help="CSV of observations (database format).")
    ],
    output: Annotated[Path, typer.Option("--output", help="CSV to write the predictions to.")],
    metadata: Annotated[
        Path | None, typer.Option("--metadata", help="Building metadata to join on building_id.")
    ] = None,
    coverage: Annotated[
        float,
        typer.Option(
            min=MIN_LEVEL,
            max=MAX_LEVEL,
            help="Confidence level of each row's prediction_set (the classes its vote falls in).",
        ),
    ] = DEFAULT_LEVEL,
    replay: Annotated[
        bool,
        typer.Option(
            "--replay",
            help="Answer each row adapted to its site (site or building_id) by the votes "
            "(thermal_sensation) of the site's earlier days (timestamp), as training's replay "
            "does; adds adapted_votes.",
        ),
    ] = False,
    votes: Annotated[
        Path | None,
        typer.Option(
            "--votes",
            help="CSV of earlier votes (database format: site or building_id, timestamp, "
            "thermal_sensation): each row answered adapted to its site by what they teach; "
            "adds adapted_votes.",
        ),
    ] = None,
) -> None:
    """Score a CSV file: one output row per input row, in order."""
    from conforto._model.artifact import load_model
    from conforto._model.predict import predict_file

    with errors():
        loaded = load_model(model_dir(model))
        summary = predict_file(
            loaded,
            input_file,
            output,
            metadata=metadata,
            coverage=coverage,
            replay=replay,
            votes=votes,
        )
    console.print(
        f"{summary.rows} rows: {summary.scored} scored, {summary.rows - summary.scored} not "
        f"scored (see 'reason'), {summary.flagged} flagged\noutput: {output}",
        highlight=False,
    )


def gate(
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
    from conforto._data.load import load_dataset
    from conforto._lifecycle.stages import gate_stage
    from conforto._tracking import make_tracker

    with errors():
        settings = get_settings()
        cfg = pipeline_config(config)

        def data() -> Any:
            return load_dataset(*sources(measurements, metadata)).frame

        report, paths = gate_stage(
            open_registry(),
            version,
            cfg.gate,
            out_dir(out, "reports", f"gate-v{version}"),
            data=data,
            tracker=make_tracker(settings, cfg.tracking),
            outbox=settings.tracking_outbox,
        )
    render.gate(report, paths)
    if not report.passed:
        raise fail(f"version {report.version} rejected: {report.reason()}")
    console.print(f"version {report.version} validated", highlight=False)


@pipeline_app.command("run")
def pipeline_run(
    measurements: MeasurementsOpt = None,
    metadata: MetadataOpt = None,
    config: ConfigOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Train anew even if this data, code and config ran.")
    ] = False,
    extra_data: ExtraDataOpt = None,
) -> None:
    """Validate data → profile → train → register → gate → promote if validated.

    Re-running with unchanged data, code and config reuses the registered version. Exits 1 when
    the data fails validation or the gate rejects the model (production then stays as it was).
    """
    run_and_report(measurements, metadata, pipeline_config(config), force=force, extra=extra_data)


def run_and_report(
    measurements: Path | None,
    metadata: Path | None,
    config: PipelineConfig,
    *,
    force: bool = False,
    extra: Path | None = None,
) -> PipelineResult:
    """Run the gated pipeline, print each stage's results and notify; exit 1 (raised) when the
    data fails validation or the gate rejects the model.
    """
    from conforto._lifecycle.pipeline import pipeline_message, run_pipeline
    from conforto._tracking import make_tracker

    with errors():
        settings = get_settings()
        result = run_pipeline(
            open_registry(),
            *sources(measurements, metadata),
            settings.home,
            config,
            tracker=make_tracker(settings, config.tracking),
            outbox=settings.tracking_outbox,
            force=force,
            notify=lambda line: console.print(f"[bold]▸[/] {line}", highlight=False),
            extra=extra,
        )
    render.validation(result.data.validation, result.data.reports)
    if not result.data.validation.ok:
        raise typer.Exit(1)
    if result.data.drift is not None:
        console.print(f"drift vs production: {render.drift_line(result.data.drift)}")
    if result.model_dir is not None:
        render.trained_model(result.model_dir)
    if result.gate is not None:
        render.gate(result.gate, result.gate_paths)
    if result.promoted is not None:
        console.print(
            f"production: version {result.promoted.previous or '-'} → {result.promoted.to}",
            highlight=False,
        )
    console.print(f"production version: {result.production or 'none'}", highlight=False)
    tell(pipeline_message(result.version, result.gate, result.production))
    if result.promoted is not None:
        tell(move_message(result.promoted))
    if result.gate is not None and not result.gate.passed:
        raise fail(f"version {result.version} rejected: {result.gate.reason()}")
    return result
