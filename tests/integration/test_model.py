"""Training, the artifact and evaluation on building-grouped samples of the real data."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from conforto._data.load import load_dataset
from conforto._model.artifact import REQUIRED_FILES, load_model, read_manifest
from conforto._model.manifest import FORMAT_VERSION
from conforto._training.evaluate import evaluate_model, predictions_frame
from conforto._training.save import write_model
from conforto._training.train import TrainConfig, train_model
from conforto.errors import ArtifactError
from tests.models import ONE_STRENGTH

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def test_artifact_is_complete_and_documented(trained_model: Path) -> None:
    names = {p.name for p in trained_model.iterdir()}
    others = {"metrics.json", "oof.parquet", "profile.json", "report.html", "MODEL_CARD.md"}
    assert {*REQUIRED_FILES, *others, "heads.json"} <= names
    manifest = json.loads((trained_model / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION == 2
    assert manifest["classes"] == ["cool", "neutral", "warm"]
    assert {f["name"] for f in manifest["features"]} >= {"ta", "rh", "vel", "met", "clo", "pmv_iso"}
    assert all(f["unit"] for f in manifest["features"] if f["name"] in ("ta", "rh", "vel"))
    assert len(manifest["data"]["sha256"]) == 64
    assert manifest["versions"]["lightgbm"]
    assert not [p for p in trained_model.parent.iterdir() if p.name.endswith(".tmp")]
    html = (trained_model / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4
    assert "PMV" in (trained_model / "MODEL_CARD.md").read_text()


def test_loaded_model_reproduces_out_of_fold_free_probabilities(
    trained_model: Path, sample_paths: tuple[Path, Path]
) -> None:
    frame = load_dataset(*sample_paths).frame.head(500)
    first = load_model(trained_model).predict_proba(frame)
    second = load_model(trained_model).predict_proba(frame)
    assert np.array_equal(first, second)
    assert np.allclose(first.sum(axis=1), 1.0)


def test_model_beats_pmv_and_majority_on_unseen_buildings(
    trained_model: Path, holdout_paths: tuple[Path, Path]
) -> None:
    summary = evaluate_model(load_model(trained_model), load_dataset(*holdout_paths).frame)[
        "holdout"
    ]
    model, majority, rows = summary["model"], summary["majority"], summary["pmv_rows"]
    assert model["macro_f1"] > majority["macro_f1"] + 0.1
    assert model["log_loss"] < majority["log_loss"]
    assert rows["model"]["macro_f1"] > rows["pmv"]["macro_f1"]
    assert rows["model"]["log_loss"] < rows["probabilistic_pmv"]["log_loss"]


def test_cross_validation_is_grouped_by_building(trained_model: Path) -> None:
    oof = pd.read_parquet(trained_model / "oof.parquet")
    folds_per_building = oof.groupby("building_id")["fold"].nunique()
    assert (folds_per_building == 1).all()
    assert oof["fold"].min() == 0
    assert oof[["p_cool", "p_neutral", "p_warm"]].notna().all().all()


def test_training_is_deterministic(sample_paths: tuple[Path, Path], tmp_path: Path) -> None:
    frame = load_dataset(*sample_paths).frame
    frame = frame[frame["building_id"].isin(frame["building_id"].unique()[:40])]
    config = TrainConfig(folds=2, search_trials=1, max_rounds=60, adaptation_strengths=ONE_STRENGTH)
    a = write_model(train_model(frame, config=config, progress=False), frame, tmp_path / "a")
    b = write_model(train_model(frame, config=config, progress=False), frame, tmp_path / "b")
    metrics_a = json.loads((tmp_path / "a" / "metrics.json").read_text())["cv"]["model"]
    metrics_b = json.loads((tmp_path / "b" / "metrics.json").read_text())["cv"]["model"]
    assert metrics_a == metrics_b
    assert np.array_equal(a.predict_proba(frame.head(50)), b.predict_proba(frame.head(50)))
    with pytest.raises(ArtifactError, match="already exists"):
        write_model(train_model(frame, config=config, progress=False), frame, tmp_path / "a")


def test_broken_artifacts_are_refused(trained_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not found"):
        load_model(tmp_path / "nothing")
    copy = tmp_path / "copy"
    shutil.copytree(trained_model, copy)
    (copy / "booster.txt").write_text(
        (copy / "booster.txt").read_text().replace("tree", "tree ", 1)
    )
    with pytest.raises(ArtifactError, match="corrupt"):
        load_model(copy)
    (copy / "booster.txt").unlink()
    with pytest.raises(ArtifactError, match=r"missing booster\.txt"):
        load_model(copy)
    shutil.copy(trained_model / "booster.txt", copy / "booster.txt")
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(ArtifactError, match=r"format 99.*retrain it"):
        load_model(copy)
    (copy / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}))
    with pytest.raises(ArtifactError, match=r"format 1.*conforto model upgrade"):
        load_model(copy)
    broken = {k: v for k, v in manifest.items() if k != "seed"}
    broken["calibration"] = {"method": "temperature", "temperature": -1.0}
    (copy / "manifest.json").write_text(json.dumps(broken))
    with pytest.raises(ArtifactError, match=r"calibration\.temperature: .*greater than 0.*seed: "):
        read_manifest(copy)


def test_predictions_frame_keeps_rows_in_order(
    trained_model: Path, holdout_paths: tuple[Path, Path]
) -> None:
    frame = load_dataset(*holdout_paths).frame
    pred = predictions_frame(load_model(trained_model), frame)
    labelled = frame[frame["thermal_sensation"].notna()]
    assert pred["record_id"].tolist() == labelled["record_id"].tolist()


def test_candidates_are_compared_on_the_same_folds(trained_model: Path) -> None:
    metrics = json.loads((trained_model / "metrics.json").read_text())["cv"]
    candidates = metrics["candidates"]
    assert set(candidates) == {"lightgbm", "logistic_regression"}
    assert candidates["logistic_regression"]["rows"] == candidates["lightgbm"]["rows"]
    assert metrics["selected"] == max(candidates, key=lambda k: candidates[k]["macro_f1"])
    manifest = json.loads((trained_model / "manifest.json").read_text())
    assert manifest["selection"]["selected"] == metrics["selected"]
    assert "Candidates (same folds)" in (trained_model / "report.html").read_text()
