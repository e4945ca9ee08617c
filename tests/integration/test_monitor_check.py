"""The loop closed: votes in the log → export → `monitor check --retrain` → gated pipeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conforto._data.load import fingerprint, load_dataset, load_training_data
from conforto._model.artifact import read_manifest
from conforto._monitor.check import votes_since
from conforto._monitor.feedback import DAY_IDS, SITE_IDS, site_building_id
from conforto._monitor.window import Span, read_predictions
from conforto._registry.model_registry import open_registry
from conforto._settings import get_settings
from conforto._tracking.mlflow import MlflowTracker, runs_since
from tests.cli import conforto_cli
from tests.factories import serve_and_vote

pytestmark = pytest.mark.integration

SMALL = """
train: {folds: 2, search_trials: 1, max_rounds: 60, adaptation_strengths: [5]}
gate: {min_gain_over_pmv: -1.0, min_gain_over_majority: -1.0,
       min_log_loss_gain_over_probabilistic_pmv: -1.0,
       champion_margin_macro_f1: 0.5, champion_margin_log_loss: 0.5, slice_tolerance: 1.0,
       coverage_tolerance: 0.5, min_head_log_loss_gain: -1.0,
       bootstrap_reps: 200}
monitor: {retrain_min_votes: 100, min_rows: 100}
tracking: []
"""


@pytest.fixture(scope="module")
def rooms(holdout_paths: tuple[Path, Path]) -> pd.DataFrame:
    frame = load_dataset(*holdout_paths).frame
    return frame[frame["thermal_sensation"].notna()].sample(600, random_state=5)


def test_export_writes_voted_predictions_as_training_rows(
    trained_model: Path, rooms: pd.DataFrame, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    votes = serve_and_vote(url, trained_model, rooms.iloc[:300], voted=0.5, sites=True)
    serve_and_vote(url, trained_model, rooms.iloc[300:], voted=0.5)  # no site: by day
    out = tmp_path / "votes.csv"
    done = conforto_cli(
        "monitor", "export-feedback", "--out", str(out), env={"CONFORTO_SERVE__LOG_URL": url}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = pd.read_csv(out)
    assert out.stat().st_mode & 0o777 == 0o644  # not the temporary file's 0600
    assert votes < len(rows) < 600
    assert rows["prediction_id"].is_unique
    by_site = rows[rows["site"].notna()]
    assert len(by_site) == votes
    assert (by_site["building_id"] == by_site["site"].map(site_building_id)).all()
    assert rows.loc[rows["site"].isna(), "building_id"].between(DAY_IDS, DAY_IDS + 40_000).all()
    assert rows["building_id"].min() >= SITE_IDS
    assert rows["thermal_sensation"].between(-3, 3).all()
    loaded = load_dataset(out).frame  # the database's format: it loads as training data
    assert {"ta", "rh", "thermal_sensation", "building_id"} <= set(loaded.columns)
    again = tmp_path / "again.csv"
    env = {"CONFORTO_SERVE__LOG_URL": url}
    assert conforto_cli("monitor", "export-feedback", "--out", str(again), env=env).returncode == 0
    assert again.read_bytes() == out.read_bytes()  # unchanged votes: an unchanged file


def test_only_occupants_rows_count_for_the_monitors_the_export_and_retraining(
    trained_model: Path, rooms: pd.DataFrame, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    serve_and_vote(url, trained_model, rooms.iloc[:200], voted=0.5, kind="explorer")
    serve_and_vote(url, trained_model, rooms.iloc[200:260], voted=0.5, kind="smoke")
    serve_and_vote(url, trained_model, rooms.iloc[260:300], voted=0.5, kind="shadow")
    votes = serve_and_vote(url, trained_model, rooms.iloc[300:450], voted=0.5)
    read = pd.concat(read_predictions(url, Span.parse("7d", None)), ignore_index=True)
    assert len(read) == 150
    assert set(read["kind"]) == {"occupant"}
    assert votes_since(url, datetime(2000, 1, 1, tzinfo=UTC)) == votes
    out = tmp_path / "votes.csv"
    env = {"CONFORTO_SERVE__LOG_URL": url}
    assert conforto_cli("monitor", "export-feedback", "--out", str(out), env=env).returncode == 0
    assert len(pd.read_csv(out)) == votes


def test_train_learns_from_the_exported_votes_and_says_so(
    trained_model: Path,
    rooms: pd.DataFrame,
    small_sample_paths: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    votes = serve_and_vote(url, trained_model, rooms, voted=0.4, sites=True)
    exported = tmp_path / "votes.csv"
    env = {"CONFORTO_SERVE__LOG_URL": url}
    assert (
        conforto_cli("monitor", "export-feedback", "--out", str(exported), env=env).returncode == 0
    )
    config = tmp_path / "small.yaml"
    config.write_text(SMALL)
    m, d = small_sample_paths
    out = tmp_path / "model"
    data = ["--measurements", str(m), "--metadata", str(d), "--config", str(config)]
    done = conforto_cli("train", *data, "--extra-data", str(exported), "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = read_manifest(out)
    sites = pd.read_csv(exported)["site"].nunique()
    assert (manifest.data.votes, manifest.data.vote_sites) == (votes, sites)
    assert manifest.data.sources["extra"] == str(exported)
    both = load_training_data(m, d, exported).frame
    assert manifest.data.sha256 == fingerprint(both) != fingerprint(load_dataset(m, d).frame)
    card = (out / "MODEL_CARD.md").read_text()
    assert f"{votes} of them occupants' votes the service gathered at {sites} sites" in card


def test_check_retrains_on_enough_votes_through_the_gate(
    home: Path,
    trained_model: Path,
    rooms: pd.DataFrame,
    small_sample_paths: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    registry = open_registry(get_settings())
    registry.register(trained_model)
    registry.promote("1", force=True, reason="the model in production")
    votes = serve_and_vote(
        get_settings().prediction_log_url, trained_model, rooms, voted=0.4, sites=True
    )
    config = tmp_path / "small.yaml"
    config.write_text(SMALL)
    data = ["--measurements", str(small_sample_paths[0]), "--metadata", str(small_sample_paths[1])]

    told = conforto_cli("monitor", "check", "--config", str(config), *data)
    assert told.returncode == 0, told.stdout + told.stderr
    assert "retrain" in told.stdout
    decision = json.loads((home / "reports/check/decision.json").read_text())
    assert decision["retrain"] is True
    assert decision["new_votes"] == votes
    assert any("occupants' votes since the model was trained" in r for r in decision["reasons"])
    assert registry.store.alias_version("production") == "1"  # told, not done

    done = conforto_cli("monitor", "check", "--retrain", "--config", str(config), *data)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"retraining with {votes} occupants' votes" in done.stdout
    assert "registered version 2" in done.stdout
    assert "production: version 1 → 2" in done.stdout  # validated by the (lenient) gate
    version = registry.store.get("2")
    assert "validated" in version.tags
    manifest = json.loads((Path(version.artifact) / "manifest.json").read_text())  # type: ignore[arg-type]
    assert manifest["data"]["sources"]["extra"].endswith("feedback.csv")
    training = load_dataset(*small_sample_paths).frame
    assert manifest["data"]["rows"] == training["thermal_sensation"].notna().sum() + votes
    assert manifest["data"]["votes"] == votes


def test_training_starts_once_per_cooldown_and_never_beside_a_running_one(
    home: Path,
    trained_model: Path,
    rooms: pd.DataFrame,
    tmp_path: Path,
    slack: tuple[str, list[dict[str, Any]]],
) -> None:
    """Hourly checks of a model whose retraining is due, the tracking store their only
    shared state: held while a training run is under way, started (and told) once, then held
    by the cooldown."""
    registry = open_registry(get_settings())
    registry.register(trained_model)
    registry.promote("1", force=True, reason="the model in production")
    serve_and_vote(get_settings().prediction_log_url, trained_model, rooms.iloc[:200], 0.5)
    config = tmp_path / "hourly.yaml"
    config.write_text("monitor: {retrain_min_votes: 20, min_rows: 100}\ntracking: [mlflow]\n")
    url, told = slack
    settings = get_settings()
    training = MlflowTracker(settings.mlflow_uri, settings.tracking.experiment)
    training.start_run("model_training", {"stage": "train"})  # another machine's, under way

    def check() -> dict[str, Any]:
        env = {"CONFORTO_NOTIFY__SLACK_WEBHOOK_URL": url}
        done = conforto_cli("monitor", "check", "--config", str(config), env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads((home / "reports/check/decision.json").read_text())

    beside = check()
    assert (beside["retrain"], beside["start_training"]) == (True, False)
    assert beside["held"].startswith("a training run is under way (model_training, since")
    assert told == []  # held: printed, not told

    training.end_run("FAILED")
    started = check()
    assert (started["start_training"], started["held"]) == (True, None)
    assert len(told) == 1
    assert "retraining is due" in json.dumps(told[0])

    again = check()
    assert again["start_training"] is False
    assert "started training; the next may start from" in again["held"]
    assert len(told) == 1  # said once
    since = datetime.now(UTC) - timedelta(hours=1)
    checks = [
        run.tags["training"]
        for run in runs_since(settings.mlflow_uri, settings.tracking.experiment, since)
        if run.name == "monitor_check"
    ]
    assert checks == ["held", "started", "held"]  # newest first
