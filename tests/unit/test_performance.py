"""Estimated and realised performance on synthetic answers with a known truth."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from conforto._monitor.performance import PerformanceReport, Scored, judge
from conforto._monitor.performance_report import over_time
from conforto._monitor.thresholds import MonitorConfig
from conforto._scoring.scores import macro_f1
from conforto._uncertainty.confidence import expected_metrics
from tests.factories import bare_model, manifest_of

if TYPE_CHECKING:
    from conforto._model.artifact import ThermalModel


def calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities, answers, and votes drawn from those very probabilities."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet([2.0, 3.0, 2.0], n)
    decision = proba.argmax(axis=1)
    y = np.array([rng.choice(3, p=p) for p in proba])
    return proba, decision, y


def test_the_estimate_matches_what_calibrated_probabilities_deliver() -> None:
    proba, decision, y = calibrated(20_000, 0)
    estimated = expected_metrics(proba, decision)
    assert estimated["accuracy"] == pytest.approx((decision == y).mean(), abs=0.01)
    assert estimated["macro_f1"] == pytest.approx(macro_f1(y, decision), abs=0.015)


def test_the_estimate_follows_the_decision_rule_not_the_largest_probability() -> None:
    proba = np.array([[0.45, 0.55, 0.0]])
    assert expected_metrics(proba, np.array([0]))["accuracy"] == pytest.approx(0.45)


def _scored(decision: np.ndarray, proba: np.ndarray, vote: np.ndarray) -> Scored:
    when = pd.Series(pd.date_range("2026-11-01", periods=len(vote), freq="h", tz="UTC"))
    groups = np.arange(len(vote)) % 40
    return Scored(proba, decision, vote.astype(float), groups, when, {"source": "test"})


def _model(accuracy: float, macro: float) -> ThermalModel:
    metrics = {"accuracy": accuracy, "macro_f1": macro, "log_loss": 1.0, "ece": 0.0}
    return bare_model(manifest=manifest_of(metrics=metrics))


def test_a_model_as_good_as_validated_is_not_degraded() -> None:
    proba, decision, y = calibrated(4000, 1)
    scored = _scored(decision, proba, y)
    truth = (decision == y).mean()
    result = judge(_model(truth, macro_f1(y, decision)), scored, MonitorConfig())
    assert result.degraded is False
    assert result.realised is not None
    low, high = result.realised.accuracy_ci
    assert low < truth < high
    assert result.labelled_rows == 4000


def test_votes_that_disagree_mark_the_model_degraded() -> None:
    proba, decision, _ = calibrated(4000, 2)
    wrong = (decision + 1) % 3  # occupants now vote otherwise
    result = judge(_model(0.6, 0.55), _scored(decision, proba, wrong), MonitorConfig())
    assert result.degraded is True
    assert any(r.startswith("realised accuracy") for r in result.reasons)


def test_without_votes_only_the_estimate_can_degrade() -> None:
    proba, decision, _ = calibrated(500, 3)
    silent = _scored(decision, proba, np.full(500, np.nan))
    fine = judge(_model(0.5, 0.5), silent, MonitorConfig())
    assert fine.realised is None
    assert fine.degraded is False
    worse = judge(_model(0.9, 0.9), silent, MonitorConfig())
    assert worse.degraded is True
    assert worse.reasons[0].startswith("estimated accuracy")


def test_over_time_counts_rows_and_votes_per_day() -> None:
    proba, decision, y = calibrated(72, 4)
    vote = np.where(np.arange(72) < 24, y, np.nan)  # votes on the first day only
    table = over_time(_scored(decision, proba, vote))
    assert table["rows"].tolist() == [24, 24, 24]
    assert table["votes"].tolist() == [24, 0, 0]
    assert np.isnan(table["realised"].iloc[1])


def test_the_report_reads_back_from_its_json() -> None:
    """A check reuses a recent performance.json: the report it reads is the one written."""
    proba, decision, y = calibrated(4000, 5)
    report = judge(_model(0.9, 0.9), _scored(decision, proba, y), MonitorConfig())
    assert report.degraded
    assert report.realised is not None
    stored = json.loads(json.dumps(report.to_json()))
    assert stored["degraded"] is True
    assert PerformanceReport.from_json(stored) == report
