"""Test data made to order: synthetic frames, data files, small trained models, logged votes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Iterable

    from conforto._predictions.records import Kind


REPO = Path(__file__).resolve().parents[1]


SHARED_DATA = REPO.parent / "shared" / "data"


def make_frames(
    n: int = 60, buildings: int = 6, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A small, valid measurements table and its metadata table, in the database's format."""
    rng = np.random.default_rng(seed)
    ta = rng.uniform(18, 32, n)
    measurements = pd.DataFrame(
        {
            "record_id": np.arange(1, n + 1),
            "building_id": rng.integers(1, buildings + 1, n),
            "timestamp": rng.choice(
                np.array(["2012-01-15T00:00:00Z", "2013-07-02T00:00:00Z", None]), n
            ),
            "season": rng.choice(["summer", "Winter", "fall"], n),
            "gender": rng.choice(np.array(["male", "female", None]), n),
            "age": rng.uniform(20, 60, n).round(),
            "ta": ta.round(1),
            "tr": (ta + rng.normal(0, 1, n)).round(1),
            "rh": rng.uniform(30, 70, n).round(),
            "vel": rng.uniform(0.05, 0.4, n).round(2),
            "met": rng.uniform(1.0, 1.4, n).round(2),
            "clo": rng.uniform(0.4, 1.0, n).round(2),
            "thermal_sensation": np.clip(np.round((ta - 25) / 3 + rng.normal(0, 0.7, n)), -3, 3),
            "t_mot_isd": rng.uniform(12, 28, n).round(1),
        }
    )
    metadata = pd.DataFrame(
        {
            "building_id": np.arange(1, buildings + 1),
            "climate": rng.choice(
                ["hot arid", "Desert (hot arid)", "humid subtropical"], buildings
            ),
            "building_type": rng.choice(["office", "classroom"], buildings),
            "cooling_type": rng.choice(["air conditioned", "naturally ventilated"], buildings),
            "country": "brazil",
        }
    )
    return measurements, metadata


def write_buildings(
    frames: tuple[pd.DataFrame, pd.DataFrame],
    buildings: Iterable[int],
    folder: Path,
    name: str = "measurements.csv",
) -> tuple[Path, Path]:
    """Write the rows of ``buildings`` (any collection of ids) as measurement + metadata files."""
    measurements, metadata = frames
    m, d = folder / name, folder / "metadata.csv"
    ids = list(buildings)
    measurements[measurements["building_id"].isin(ids)].to_csv(m, index=False)
    metadata[metadata["building_id"].isin(ids)].to_csv(d, index=False)
    return m, d


def answer(label: str = "warm", prediction_id: str | None = None, **fields: Any) -> Any:
    """A :class:`~conforto._predictions.answer.Prediction` of class ``label`` (a new id unless
    given), version ``3``, without occupant responses unless ``fields`` give them."""
    from conforto._predictions.answer import Prediction, Probabilities
    from conforto._predictions.ids import new_ids

    content: dict[str, Any] = {
        "prediction_id": prediction_id or new_ids(1)[0],
        "predicted_class": label,
        "probabilities": Probabilities(0.1, 0.3, 0.6),
        "model_version": "3",
        "pmv": 1.2,
        "ppd": 35.0,
        "notes": (),
        "prediction_set": (label,),
        "coverage": 0.9,
        "dissatisfied": None,
        "unacceptable": None,
        "preference": None,
    }
    return Prediction(**{**content, **fields})


def manifest_of(**fields: Any) -> Any:
    """A valid :class:`~conforto._model.manifest.Manifest` of a one-feature model, with
    ``fields`` (parts given as dicts) in place of its defaults."""
    from conforto._model.manifest import Manifest

    content: dict[str, Any] = {
        "name": "test",
        "created": "2026-01-01T00:00:00+00:00",
        "features": [{"name": "ta", "kind": "numeric"}],
        "classes": ["cool", "neutral", "warm"],
        "class_weights": [1.0, 1.0, 1.0],
        "calibration": {"temperature": 1.0},
        "baselines": {"majority": [0.3, 0.4, 0.3], "probabilistic_pmv": {}},
        "booster": {"params": {}, "rounds": 1, "feature_importance_gain": {"ta": 1.0}},
        "config": {},
        "seed": 0,
        "data": {"sha256": "0" * 64, "rows": 1, "buildings": 1},
        "versions": {},
        "lineage": {"git_commit": None, "conforto": "0.0.0", "code_sha256": None},
        "selection": {"selected": "lightgbm", "macro_f1": {"lightgbm": 0.5}},
        "metrics": {"accuracy": 0.5, "macro_f1": 0.5, "log_loss": 1.0, "ece": 0.0},
    }
    return Manifest.model_validate({**content, **fields})


def bare_model(spec: Any = None, manifest: Any = None, directory: Path | None = None) -> Any:
    """A :class:`ThermalModel` without a booster or calibrations, for the tests of code that
    reads only its features, manifest (:func:`manifest_of` by default) or files (drift, the
    performance verdict)."""
    from conforto._model.artifact import ThermalModel
    from conforto._model.inputs import FeatureSpec
    from conforto._uncertainty.confidence import ConfidenceCalibration

    calibration = ConfidenceCalibration(1.0, (0.0, 0.0, 0.0))
    return ThermalModel(
        spec or FeatureSpec(),
        None,
        1.0,
        np.ones(3),
        None,  # type: ignore[arg-type]  # these tests never ask for sets
        calibration,
        None,
        manifest or manifest_of(),
        directory,
    )


def variant(model: Path, out: Path) -> Path:
    """A copy of ``model`` at ``out`` that a registry takes for another training: the same
    booster, another checksum and another configuration (its seed) in the manifest; only the
    artifact's own files (not what a registry added beside them: MLflow's, a registration)."""
    import shutil

    from conforto._model.artifact import MANIFEST, read_manifest, save_manifest

    listed = {MANIFEST, *read_manifest(model).files}
    shutil.copytree(model, out, ignore=lambda _, names: [n for n in names if n not in listed])
    manifest = read_manifest(out)
    seed = manifest.seed + 1
    changed = {"note": f"a variant of {model.name}", "seed": seed}
    save_manifest(
        out, manifest.model_copy(update={**changed, "config": {**manifest.config, "seed": seed}})
    )
    return out


def as_format_1(model: Path, out: Path, drop: tuple[str, ...] = ()) -> Path:
    """A copy of ``model`` at ``out`` as the previous release wrote it: artifact format 1,
    without the files in ``drop`` (as models trained before them)."""
    import json
    import shutil

    from conforto._fileio import file_sha256
    from conforto._model.artifact import MANIFEST

    shutil.copytree(model, out)
    manifest = json.loads((out / MANIFEST).read_text())
    for name in drop:
        (out / name).unlink()
    files = {name: file_sha256(out / name) for name in manifest["files"] if name not in drop}
    (out / MANIFEST).write_text(
        json.dumps({**manifest, "format_version": 1, "files": files}, indent=2) + "\n"
    )
    return out


def regrouped_sets(model: Path, by: str, out: Path) -> Path:
    """A copy of ``model`` at ``out`` whose prediction sets are calibrated grouped ``by``
    (on its own out-of-fold predictions), as training with ``conformal_by: by`` makes them:
    checksummed again."""
    import json
    import shutil

    import pandas as pd

    from conforto._model.artifact import read_manifest, save_manifest
    from conforto._uncertainty.calibration import calibrate_frame
    from conforto._uncertainty.sets import CONFORMAL

    shutil.copytree(model, out)
    calibration = calibrate_frame(pd.read_parquet(out / "oof.parquet"), by=by)
    (out / CONFORMAL).write_text(json.dumps(calibration.to_dict()) + "\n")
    save_manifest(out, read_manifest(out))
    return out


def table_rows(url: str, table: Any) -> list[dict[str, Any]]:
    """Every row of a SQLAlchemy table in the database at ``url``."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(table))]
    finally:
        engine.dispose()


LOGGED_INPUTS = ["ta", "tr", "rh", "vel", "met", "clo", "t_mot_isd", "season", "cooling_type"]


def observations(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``frame``'s rooms as the service takes them: the logged inputs each room has."""
    rows = frame[LOGGED_INPUTS].to_dict("records")
    return [{str(k): v for k, v in r.items() if v is not None and v == v} for r in rows]


def serve_and_vote(
    url: str,
    model_dir: Path,
    frame: pd.DataFrame,
    voted: float,
    sites: bool = False,
    since: float = 2 * 86_400,
    kind: Kind = "occupant",
) -> int:
    """Answer ``frame``'s rooms with the model, log them one every 100 s from ``since`` seconds
    ago (with their ``building_id`` as the site when ``sites``) as asked by ``kind``, and log
    the occupants' real votes for a share ``voted`` of them; the number of votes."""
    import time

    from conforto._model.artifact import load_model
    from conforto._predictions.records import PredictionRow, Row, VoteRow
    from conforto._predictions.store import LogDatabase
    from conforto._serving.runtime import Predictor

    predictor = Predictor(load_model(model_dir), "1")
    inputs = observations(frame)
    answers = predictor.predict(inputs)
    now = time.time()
    names = [f"building {b}" for b in frame["building_id"]] if sites else [None] * len(frame)
    batch: list[Row] = [
        PredictionRow.of(answer, given, 1.0, site, now=now - since + 100 * i, kind=kind)
        for i, (answer, given, site) in enumerate(zip(answers, inputs, names, strict=True))
    ]
    votes = frame["thermal_sensation"].to_numpy()
    chosen = np.random.default_rng(0).random(len(frame)) < voted
    for i in np.flatnonzero(chosen):
        batch.append(VoteRow(answers[i].prediction_id, float(votes[i]), now))
    database = LogDatabase(url)
    database.write(batch)
    database.close()
    return int(chosen.sum())
