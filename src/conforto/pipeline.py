"""Stages that chain the library's functions, each recorded through a tracker."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from conforto.artifact import ThermalModel
from conforto.data import Dataset, ensure_group_column, load_dataset
from conforto.features import FEATURES, comfort_features
from conforto.profile import profile_frame, write_profile
from conforto.tracking import NullTracker, Tracker, tracked_run
from conforto.train import TrainConfig, train_model
from conforto.validation import ValidationReport, validate_dataset, write_validation


@dataclass
class DataStageResult:
    """What the data stage produced."""

    validation: ValidationReport
    frame: pd.DataFrame
    reports: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    tracking_failures: list[tuple[str, str]] = field(default_factory=list)


def data_stage(
    measurements: Path,
    metadata: Path | None,
    out: Path,
    *,
    tracker: Tracker | None = None,
    outbox: Path | None = None,
) -> DataStageResult:
    """Load → validate → profile → physics features, writing every report into ``out``.

    Parameters
    ----------
    measurements, metadata
        Data files (csv, csv.gz or parquet).
    out
        Folder for ``validation.{json,html}`` and ``profile.{json,html}``.
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
    result_seconds: dict[str, float] = {}
    reports: dict[str, Path] = {}
    with tracked_run(
        tracker or NullTracker(), "data_validation", {"stage": "data"}, outbox=outbox
    ) as run:
        run.log_params({"measurements": str(measurements), "metadata": str(metadata)})
        start = time.perf_counter()
        dataset: Dataset = load_dataset(measurements, metadata, required=())
        result_seconds["load"] = time.perf_counter() - start

        start = time.perf_counter()
        report = validate_dataset(dataset)
        reports["validation.json"], reports["validation.html"] = write_validation(report, out)
        result_seconds["validate"] = time.perf_counter() - start

        if report.ok:
            frame = ensure_group_column(dataset.frame)
            start = time.perf_counter()
            profile = profile_frame(frame)
            reports["profile.json"], reports["profile.html"] = write_profile(profile, out)
            result_seconds["profile"] = time.perf_counter() - start

            start = time.perf_counter()
            features = comfort_features(frame, FEATURES)
            result_seconds["features"] = time.perf_counter() - start
            run.log_metrics({f"{n}_coverage": float(features[n].notna().mean()) for n in features})
        run.log_metrics(
            {
                "rows": float(report.n_rows),
                "checks_failed": float(len(report.failed)),
                "checks_warned": float(len(report.warnings)),
                **{f"seconds_{k}": v for k, v in result_seconds.items()},
            }
        )
        run.set_tags({"validation": "passed" if report.ok else "failed"})
        for path in reports.values():
            run.log_artifact(path)
    return DataStageResult(report, dataset.frame, reports, result_seconds, run.failures)


def train_stage(
    frame: pd.DataFrame,
    out: Path,
    *,
    config: TrainConfig,
    tracker: Tracker | None = None,
    outbox: Path | None = None,
    sources: dict[str, str] | None = None,
    progress: bool = True,
) -> ThermalModel:
    """Train (see :func:`conforto.train.train_model`) inside a tracked ``model_training`` run.

    Returns
    -------
    ThermalModel
        The trained model, written to ``out`` (replaced when it exists).
    """
    with tracked_run(
        tracker or NullTracker(), "model_training", {"stage": "train"}, outbox=outbox
    ) as run:
        run.log_params({"seed": config.seed, **config.model_dump()})
        model = train_model(
            frame, out, config=config, force=True, sources=sources, progress=progress
        )
        metrics = json.loads((out / "metrics.json").read_text())
        cv = metrics["cv"]
        run.log_metrics(
            {
                **{f"cv_{k}": v for k, v in cv["model"].items() if isinstance(v, float)},
                "pmv_macro_f1": cv["pmv_rows"]["pmv"]["macro_f1"],
                "probabilistic_pmv_log_loss": cv["pmv_rows"]["probabilistic_pmv"]["log_loss"],
                **{
                    f"random_split_{k}_accuracy": v["accuracy"]
                    for k, v in metrics["random_split"].items()
                },
            }
        )
        run.set_tags({"data_sha256": model.manifest["data"]["sha256"]})
        run.log_artifact(out)
    return model
