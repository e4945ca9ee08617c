"""``conforto monitor performance`` over a real prediction log with feedback, and its gauges
pushed to a real Pushgateway."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from conforto._data.load import load_dataset
from conforto._model.artifact import load_model
from conforto._monitor.performance import check_performance
from conforto._monitor.window import LogSource, Span, read_predictions
from conforto._uncertainty.confidence import CONFIDENCE, ConfidenceCalibration
from tests.cli import conforto_cli
from tests.factories import serve_and_vote
from tests.processes import Daemon, pushgateway, scrape

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rooms(holdout_paths: tuple[Path, Path]) -> pd.DataFrame:
    frame = load_dataset(*holdout_paths).frame
    return frame[frame["thermal_sensation"].notna()].sample(1500, random_state=4)


@pytest.fixture(scope="module")
def gateway() -> Iterator[Daemon]:
    daemon = pushgateway()
    yield daemon
    daemon.stop()


def test_estimate_and_votes_from_the_log_of_either_database(
    trained_model: Path, rooms: pd.DataFrame, log_url: str
) -> None:
    votes = serve_and_vote(log_url, trained_model, rooms, voted=0.6)
    week = Span(datetime.now(UTC) - timedelta(days=7), datetime.now(UTC))
    result, _ = check_performance(load_model(trained_model), LogSource(log_url, week))
    assert result.rows == 1500
    assert result.labelled_rows == votes
    realised = result.realised
    assert realised is not None
    low, high = realised.accuracy_ci  # no building or site in the log: days are the groups
    assert low <= realised.accuracy <= high
    # calibrated probabilities: the estimate lands near what the votes say
    assert abs(result.estimated["accuracy"] - realised.accuracy) < 0.06
    assert set(result.validation) == {"accuracy", "macro_f1"}


def test_the_estimate_reads_the_models_confidence_calibration(
    trained_model: Path, rooms: pd.DataFrame, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    serve_and_vote(url, trained_model, rooms, voted=0.0)
    week = Span(datetime.now(UTC) - timedelta(days=7), datetime.now(UTC))
    result, _ = check_performance(load_model(trained_model), LogSource(url, week))
    assert CONFIDENCE in result.estimator
    # the same figure by hand: the stored calibration over the logged answers
    calibration = ConfidenceCalibration.from_dict(
        json.loads((trained_model / CONFIDENCE).read_text())
    )
    logged = pd.concat(list(read_predictions(url, week)), ignore_index=True)
    proba = logged[["p_cool", "p_neutral", "p_warm"]].to_numpy()
    codes = {"cool": 0, "neutral": 1, "warm": 2}
    decision = np.asarray(logged["predicted_class"].map(codes), dtype=np.int64)
    right = calibration.right(proba, decision)
    assert result.estimated["accuracy"] == pytest.approx(right.mean())
    answered = proba[np.arange(len(proba)), decision]  # not the probabilities as answered
    assert result.estimated["accuracy"] != pytest.approx(answered.mean(), abs=1e-3)


def test_training_measures_the_estimate_on_buildings_the_calibration_never_saw(
    trained_model: Path,
) -> None:
    estimate = json.loads((trained_model / "metrics.json").read_text())["cv"]["estimate"]
    assert estimate["rows"] == len(pd.read_parquet(trained_model / "oof.parquet"))
    realised = estimate["realised"]["accuracy"]
    assert abs(estimate["recalibrated"]["accuracy"] - realised) < 0.02  # each fold's from others
    card = (trained_model / "MODEL_CARD.md").read_text()
    assert "## Accuracy estimated without votes" in card


def test_cli_reports_and_pushes_every_gauge(
    trained_model: Path, rooms: pd.DataFrame, gateway: Daemon, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    votes = serve_and_vote(url, trained_model, rooms, voted=0.3)
    env = {"CONFORTO_SERVE__LOG_URL": url}
    out = tmp_path / "r"
    common = ["--model", str(trained_model), "--since", "3d", "--push", gateway.url]
    done = conforto_cli("monitor", "performance", *common, "--out", str(out), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((out / "performance.json").read_text())
    assert set(result) >= {
        "model_version",
        "rows",
        "labelled_rows",
        "estimated",
        "realised",
        "validation",
        "degraded",
    }
    assert result["labelled_rows"] == votes
    assert "realised (votes)" in done.stdout
    assert (out / "performance.html").stat().st_size > 10_000
    drift = conforto_cli("monitor", "drift", *common, "--out", str(tmp_path / "d"), env=env)
    assert drift.returncode == 0, drift.stdout + drift.stderr

    version = result["model_version"]
    metrics = scrape(f"{gateway.url}/metrics")
    found = {k.split("{")[0] for k in metrics}
    assert found >= {
        "conforto_estimated_accuracy",
        "conforto_realised_accuracy",
        "conforto_validation_accuracy",
        "conforto_performance_degraded",
        "conforto_feedback_rows",
        "conforto_monitor_last_run_timestamp_seconds",
        "conforto_drift_statistic",
        "conforto_drift_detected",
        "conforto_dataset_drift",
    }
    estimated = [v for k, v in metrics.items() if k.startswith("conforto_estimated_accuracy{")]
    assert estimated == [pytest.approx(result["estimated"]["accuracy"])]
    feedback = [v for k, v in metrics.items() if k.startswith("conforto_feedback_rows{")]
    assert feedback == [votes]
    ta = [k for k in metrics if k.startswith("conforto_drift_detected{") and 'feature="ta"' in k]
    assert len(ta) == 1
    assert f'model_version="{version}"' in ta[0]
    # both groups live side by side: one push never wipes the other
    stamps = [k for k in metrics if k.startswith("conforto_monitor_last_run_timestamp_seconds{")]
    assert {('monitor="drift"' in k, 'monitor="performance"' in k) for k in stamps} == {
        (True, False),
        (False, True),
    }


def test_an_unreachable_gateway_is_a_clear_error(
    trained_model: Path, rooms: pd.DataFrame, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    serve_and_vote(url, trained_model, rooms.head(100), voted=0.0)
    done = conforto_cli(
        "monitor",
        "performance",
        "--model",
        str(trained_model),
        "--push",
        "http://127.0.0.1:9",
        env={"CONFORTO_SERVE__LOG_URL": url},
    )
    assert done.returncode == 1
    assert "cannot push to the Pushgateway at http://127.0.0.1:9" in done.stderr
