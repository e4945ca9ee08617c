"""The pipeline's stages, each a tracked run: ``data_validation`` (load, validate, profile,
physics features), ``model_training`` and ``model_validation`` (the gate).

:mod:`conforto._lifecycle.pipeline` chains them; each also runs alone (``conforto data validate``,
``conforto train``, ``conforto gate``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from conforto._data.load import (
    Votes,
    ensure_group_column,
    fingerprint,
    load_training_data,
)
from conforto._data.profiling import profile_frame, write_profile
from conforto._data.validation import ValidationReport, validate_dataset, write_validation
from conforto._lifecycle.gate import GateConfig, GateReport, run_gate
from conforto._lifecycle.gate_checks import adaptation_checks, head_checks
from conforto._lifecycle.gate_report import write_gate_report
from conforto._model.artifact import ThermalModel, load_model
from conforto._model.behaviour import behaviour_checks
from conforto._monitor.drift import DriftReport, check_drift, write_drift
from conforto._monitor.window import FrameSource
from conforto._physics.features import FEATURES, comfort_features
from conforto._registry.pointer import artifact_sha256
from conforto._tracking import NullTracker, Tracker, tracked_run
from conforto._training.save import write_model
from conforto._training.train import TrainConfig, refit_out_of_fold, train_model
from conforto.errors import ConfortoError, DataError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from conforto._monitor.thresholds import MonitorConfig
    from conforto._registry.model_registry import Registry
    from conforto._training.summary import Evaluation, MetricsFile

log = logging.getLogger(__name__)


@dataclass
class DataStageResult:
    """What the data stage produced."""

    validation: ValidationReport
    frame: pd.DataFrame
    reports: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    tracking_failures: list[tuple[str, str]] = field(default_factory=list)
    drift: DriftReport | None = None
    #: The occupants' votes among the rows (``--extra-data``).
    votes: Votes = field(default_factory=Votes)


def data_stage(
    measurements: Path,
    metadata: Path | None,
    out: Path,
    *,
    tracker: Tracker | None = None,
    outbox: Path | None = None,
    production: tuple[ThermalModel, str] | None = None,
    monitor: MonitorConfig | None = None,
    extra: Path | None = None,
) -> DataStageResult:
    """Load → validate → profile → physics features (→ drift against production), writing every
    report into ``out``.

    Parameters
    ----------
    measurements, metadata
        Data files (csv, csv.gz or parquet).
    out
        Folder for ``validation.{json,html}``, ``profile.{json,html}`` and ``drift/``.
    production
        The production model and its version: the data's inputs are compared with its
        training reference (recorded, never fatal).
    monitor
        Drift thresholds.
    extra
        More training rows in the database's format with their context columns (occupants'
        votes exported by ``conforto monitor export-feedback``), validated with the rest.
    tracker
        Where to record parameters and results; failures there only warn.
    outbox
        Where tracker calls that failed are kept for a later retry.

    Returns
    -------
    DataStageResult
        The validation report, the loaded data (for the next stage, so the files are read
        once), the paths written and the time each step took [s].
        Profile and features are computed only when validation passes.
    """
    seconds: dict[str, float] = {}
    reports: dict[str, Path] = {}
    with tracked_run(
        tracker or NullTracker(), "data_validation", {"stage": "data"}, outbox=outbox
    ) as run:
        run.log_params(
            {"measurements": str(measurements), "metadata": str(metadata), "extra": str(extra)}
        )
        start = time.perf_counter()
        dataset = load_training_data(measurements, metadata, extra)
        seconds["load"] = time.perf_counter() - start

        start = time.perf_counter()
        report = validate_dataset(dataset)
        reports["validation.json"], reports["validation.html"] = write_validation(report, out)
        seconds["validate"] = time.perf_counter() - start

        drift = None
        if report.ok:
            drift = _describe(dataset.frame, production, monitor, out, reports, seconds, run)
        run.log_metrics({f"seconds_{k}": v for k, v in seconds.items()})
        record_validation(run, report, reports.values())
    return DataStageResult(
        report, dataset.frame, reports, seconds, run.failures, drift, dataset.votes
    )


def record_validation(run: Tracker, report: ValidationReport, reports: Iterable[Path]) -> None:
    """Record a validation's counts (rows, failed and warned checks), verdict and reports."""
    run.log_metrics(
        {
            "rows": float(report.n_rows),
            "checks_failed": float(len(report.failed)),
            "checks_warned": float(len(report.warnings)),
        }
    )
    run.set_tags({"validation": "passed" if report.ok else "failed"})
    for path in reports:
        run.log_artifact(path)


def _describe(
    data: pd.DataFrame,
    production: tuple[ThermalModel, str] | None,
    monitor: MonitorConfig | None,
    out: Path,
    reports: dict[str, Path],
    seconds: dict[str, float],
    run: Tracker,
) -> DriftReport | None:
    """Valid data's profile, physics features' coverage and drift against production."""
    frame = ensure_group_column(data)
    start = time.perf_counter()
    reports["profile.json"], reports["profile.html"] = write_profile(profile_frame(frame), out)
    seconds["profile"] = time.perf_counter() - start
    start = time.perf_counter()
    features = comfort_features(frame, FEATURES)
    seconds["features"] = time.perf_counter() - start
    run.log_metrics({f"{n}_coverage": float(features[n].notna().mean()) for n in features})
    return _drift(frame, production, monitor, out, reports, run) if production else None


def _drift(
    frame: pd.DataFrame,
    production: tuple[ThermalModel, str],
    monitor: MonitorConfig | None,
    out: Path,
    reports: dict[str, Path],
    run: Tracker,
) -> DriftReport | None:
    """The new data against the production model's training reference (never fatal)."""
    model, version = production
    try:
        report, before, now = check_drift(
            model, FrameSource(frame, "training data"), config=monitor, model_version=version
        )
    except ConfortoError as exc:
        log.warning("drift against production version %s not checked: %s", version, exc)
        return None
    reports.update(write_drift(report, before, now, out / "drift"))
    run.log_metrics({"drift_share": report.share, "dataset_drift": float(report.dataset_drift)})
    run.set_tags({"drifted_features": ",".join(report.drifted_features) or "none"})
    return report


def train_stage(
    frame: pd.DataFrame,
    out: Path,
    *,
    config: TrainConfig,
    tracker: Tracker | None = None,
    outbox: Path | None = None,
    sources: dict[str, str] | None = None,
    votes: Votes | None = None,
    progress: bool = True,
) -> ThermalModel:
    """Train (see :func:`conforto._training.train.train_model`) and write the model directory,
    inside a tracked ``model_training`` run; ``votes``: the occupants' votes among the rows,
    for the lineage and the model card.

    Returns
    -------
    ThermalModel
        The trained model, written to ``out`` (replaced when it exists).
    """
    with tracked_run(
        tracker or NullTracker(), "model_training", {"stage": "train"}, outbox=outbox
    ) as run:
        run.log_params({"seed": config.seed, **config.model_dump()})
        result = train_model(frame, config=config, progress=progress)
        model = write_model(result, frame, out, force=True, sources=sources, votes=votes)
        cv = result.metrics["cv"]
        run.log_metrics(
            {
                **{f"cv_{k}": v for k, v in cv["model"].items() if isinstance(v, float)},
                "pmv_macro_f1": cv["pmv_rows"]["pmv"]["macro_f1"],
                "probabilistic_pmv_log_loss": cv["pmv_rows"]["probabilistic_pmv"]["log_loss"],
                **{
                    f"random_split_{k}_accuracy": v["accuracy"]
                    for k, v in result.metrics["random_split"].items()
                },
            }
        )
        run.set_tags(
            {
                "data_sha256": model.manifest.data.sha256,
                "artifact_sha256": artifact_sha256(out),
            }
        )
        run.log_artifact(out)
    return model


def _oof(artifact: Path) -> pd.DataFrame:
    return pd.read_parquet(artifact / "oof.parquet")


def _cross_validation(artifact: Path) -> Evaluation:
    """The artifact's cross-validation summary (``metrics.json``'s ``cv``)."""
    metrics: MetricsFile = json.loads((artifact / "metrics.json").read_text())
    return metrics["cv"]


def champion_predictions(
    challenger: ThermalModel,
    challenger_oof: pd.DataFrame,
    champion: ThermalModel,
    champion_oof: pd.DataFrame,
    data: Callable[[], pd.DataFrame],
    *,
    progress: bool = True,
) -> tuple[pd.DataFrame, str]:
    """The champion's out-of-fold predictions on the challenger's rows and folds.

    The champion's stored predictions serve when both were trained on the same data with the
    same folds; otherwise the champion's configuration is cross-validated again on the
    challenger's folds of the challenger's data (loaded by ``data`` only then).

    Returns
    -------
    tuple
        ``(predictions, "stored" or "refit")``.

    Raises
    ------
    DataError
        When the data ``data`` returns is not the data the challenger was trained on.
    """
    same_data = champion.manifest.data.sha256 == challenger.manifest.data.sha256
    if same_data and np.array_equal(champion_oof["fold"], challenger_oof["fold"]):
        return champion_oof, "stored"
    frame = data()
    expected = challenger.manifest.data.sha256
    if fingerprint(frame) != expected:
        raise DataError(
            f"the data given is not the data the challenger was trained on (sha256 "
            f"{expected[:12]}…, sources {challenger.manifest.data.sources}); "
            "pass those files with --measurements/--metadata."
        )
    config = TrainConfig.model_validate(champion.manifest.config)
    fold_of = challenger_oof["fold"].to_numpy(dtype=np.int64)
    return refit_out_of_fold(frame, config, fold_of, progress=progress), "refit"


def gate_stage(
    registry: Registry,
    version: str,
    config: GateConfig,
    out: Path,
    *,
    data: Callable[[], pd.DataFrame],
    tracker: Tracker | None = None,
    outbox: Path | None = None,
    progress: bool = True,
) -> tuple[GateReport, dict[str, Path]]:
    """Judge a registered version against the baselines and the production champion.

    Tags the version ``validated`` or ``rejected`` (with the failed checks) and writes
    ``gate.json`` and ``gate.html`` into ``out``.

    Parameters
    ----------
    registry
        The model registry.
    version
        The challenger.
    config
        The gate's thresholds.
    out
        Report folder.
    data
        Loads the challenger's training data, needed only when the champion must be refitted.

    Returns
    -------
    tuple
        The gate report and the paths written.
    """
    with tracked_run(
        tracker or NullTracker(), "model_validation", {"stage": "gate"}, outbox=outbox
    ) as run:
        found, artifact = registry.resolve(version)  # verifies every file of the artifact
        challenger = load_model(artifact, verify=False)
        challenger_oof = _oof(artifact)
        champion_version = registry.store.alias_version("production")
        champion, source = None, "none"
        if champion_version is not None and champion_version != found.version:
            _, champion_artifact = registry.resolve(champion_version)
            frame, source = champion_predictions(
                challenger,
                challenger_oof,
                load_model(champion_artifact, verify=False),
                _oof(champion_artifact),
                data,
                progress=progress,
            )
            champion = (champion_version, frame)
        run.log_params(
            {
                "version": found.version,
                "champion": champion_version or "none",
                "oof_source": source,
                **config.model_dump(),
            }
        )
        cv = _cross_validation(artifact)
        report = run_gate(
            found.version,
            challenger_oof,
            behaviour_checks(challenger),
            config,
            champion=champion,
            oof_source=source,
            conformal_by=challenger.conformal.by,
            extra=[
                *head_checks(cv.get("heads"), config.min_head_log_loss_gain),
                *adaptation_checks(cv.get("adaptation"), config.adaptation_min_votes),
            ],
        )
        paths = write_gate_report(report, out)
        registry.record_gate(found.version, report.passed, report.reason(), list(paths.values()))
        run.log_metrics(
            {c.name.replace(" ", "_"): float(c.value) for c in report.checks if c.value is not None}
        )
        run.set_tags({"version": found.version, "validated" if report.passed else "rejected": ""})
        for path in paths.values():
            run.log_artifact(path)
    return report, paths
