"""Writing a trained model's directory (the artifact :mod:`conforto._model.artifact` loads).

Everything goes into a temporary folder beside the target, which is renamed only once complete:
a crash leaves either the old directory or the new one, never half of one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from conforto._data.load import Votes, fingerprint
from conforto._data.profiling import drift_reference, profile_frame
from conforto._data.target import CLASS_NAMES
from conforto._fileio import atomic_write_json, atomic_write_text
from conforto._lineage import code_fingerprint, git_commit, package_version, package_versions
from conforto._model.artifact import (
    DRIFT_REFERENCE,
    GOLDEN,
    Golden,
    GoldenCase,
    ThermalModel,
    load_model,
    save_manifest,
)
from conforto._model.manifest import BOOSTER, Manifest
from conforto._scoring.scores import N_CLASSES
from conforto._training.evaluate import write_evaluation
from conforto._uncertainty.confidence import CONFIDENCE
from conforto._uncertainty.sets import CONFORMAL
from conforto.errors import ArtifactError

if TYPE_CHECKING:
    from conforto._model.inputs import Observation
    from conforto._training.train import TrainingResult

#: The golden rooms: ordinary, hot and cold ones, with and without context. The inputs are API
#: requests, so a smoke test sends them as they are.
GOLDEN_ROOMS: tuple[Observation, ...] = (
    {
        "ta": 24.5,
        "tr": 25.0,
        "rh": 55.0,
        "vel": 0.15,
        "met": 1.1,
        "clo": 0.6,
        "t_mot_isd": 22.0,
        "season": "summer",
        "cooling_type": "air conditioned",
    },
    {"ta": 32.0, "tr": 32.0, "rh": 80.0, "vel": 0.05, "met": 1.2, "clo": 1.0, "t_mot_isd": 28.0},
    {"ta": 16.0, "tr": 16.0, "rh": 40.0, "vel": 0.2, "met": 1.0, "clo": 0.3, "t_mot_isd": 10.0},
    {
        "ta": 21.0,
        "rh": 40.0,
        "vel": 0.3,
        "met": 1.2,
        "clo": 1.0,
        "season": "winter",
        "climate": "humid subtropical",
        "country": "brazil",
    },
    {"ta": 28.0, "rh": 70.0, "vel": 0.05, "met": 1.0, "clo": 0.5},
)


def golden(model: ThermalModel) -> Golden:
    """The golden rooms with the model's class and probabilities (``golden.json``)."""
    proba = model.predict_proba(pd.DataFrame(list(GOLDEN_ROOMS)))
    classes = model.decide(proba)
    cases = [
        GoldenCase(
            inputs=room,
            predicted_class=CLASS_NAMES[int(k)],
            probabilities=dict(zip(CLASS_NAMES, p.tolist(), strict=True)),
        )
        for room, p, k in zip(GOLDEN_ROOMS, proba, classes, strict=True)
    ]
    return Golden(cases=cases)


def manifest(
    result: TrainingResult,
    frame: pd.DataFrame,
    sources: dict[str, str] | None = None,
    votes: Votes | None = None,
) -> Manifest:
    """The manifest of a trained model (``save_manifest`` adds the checksums).

    Parameters
    ----------
    result
        The trained model.
    frame
        The data it was trained on (its fingerprint is the lineage's data sha256).
    sources
        Data file paths to record.
    votes
        The occupants' votes among the rows (gathered by the service).
    """
    final, config, y = result.final, result.config, result.y
    votes = votes or Votes()
    cv = result.metrics["cv"]
    importance = final.booster.feature_importance("gain").tolist()
    return Manifest.model_validate(
        {
            "name": "conforto-thermal-sensation",
            "created": pd.Timestamp.now(tz="UTC").isoformat(),
            "features": result.spec.features,
            "classes": list(CLASS_NAMES),
            "class_weights": final.class_weights.tolist(),
            "calibration": {"method": "temperature", "temperature": final.temperature},
            "baselines": {
                "majority": (np.bincount(y, minlength=N_CLASSES) / len(y)).tolist(),
                "probabilistic_pmv": result.probabilistic_pmv.to_dict(),
            },
            "booster": {
                "params": final.params,
                "rounds": final.rounds,
                "feature_importance_gain": dict(zip(result.spec.names, importance, strict=True)),
            },
            "config": config.model_dump(),
            "seed": config.seed,
            "data": {
                "sha256": fingerprint(frame),
                "rows": len(result.rows),
                "buildings": int(np.unique(result.groups).size),
                "sources": dict(sources or {}),
                "votes": votes.rows,
                "vote_sites": votes.sites,
            },
            "versions": package_versions(),
            "lineage": {
                "git_commit": git_commit(),
                "conforto": package_version(),
                "code_sha256": code_fingerprint(),
            },
            "selection": {
                "selected": cv["selected"],
                "macro_f1": {k: v["macro_f1"] for k, v in cv["candidates"].items()},
            },
            "metrics": {k: cv["model"][k] for k in ("accuracy", "macro_f1", "log_loss", "ece")},
            "adaptation": result.adaptation,
        }
    )


def write_model(
    result: TrainingResult,
    frame: pd.DataFrame,
    out: Path,
    *,
    force: bool = False,
    sources: dict[str, str] | None = None,
    votes: Votes | None = None,
) -> ThermalModel:
    """Write a complete model directory: booster, predictions, profile, report, card, manifest.

    Parameters
    ----------
    result
        The trained model (:func:`conforto._training.train.train_model`).
    frame
        The data it was trained on.
    out
        Model directory to create.
    force
        Replace an existing ``out``.
    sources
        Data file paths to record in the lineage.
    votes
        The occupants' votes among the rows, for the lineage and the model card.

    Returns
    -------
    ThermalModel
        The model, loaded back from ``out`` (every checksum verified).

    Raises
    ------
    ArtifactError
        When ``out`` exists and ``force`` is not set.
    """
    if out.exists() and not force:
        raise ArtifactError(
            f"{out} already exists: choose another --out or pass --force to replace it."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        result.final.booster.save_model(str(tmp / BOOSTER))
        content = manifest(result, frame, sources, votes)
        fitted = ThermalModel(
            result.spec,
            result.final.booster,
            result.final.temperature,
            result.final.class_weights,
            result.conformal,
            result.confidence,
            result.heads,
            content,
        )
        atomic_write_json(tmp / GOLDEN, golden(fitted))
        atomic_write_text(tmp / CONFORMAL, json.dumps(result.conformal.to_dict()) + "\n")
        atomic_write_json(tmp / CONFIDENCE, result.confidence.to_dict())
        if result.heads is not None:
            result.heads.save(tmp)
        result.cv.predictions.to_parquet(tmp / "oof.parquet", index=False)
        atomic_write_json(tmp / "profile.json", profile_frame(result.rows))
        reference = drift_reference(result.rows, result.spec.inputs, seed=result.config.seed)
        reference.to_parquet(tmp / DRIFT_REFERENCE, index=False)
        write_evaluation(
            result.metrics, tmp, manifest=content, title="Cross-validation (grouped by building)"
        )
        save_manifest(tmp, content)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_model(out)
