from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss

from conforto._scoring.scores import (
    bootstrap_interval,
    classification_metrics,
    confusion,
    expected_calibration_error,
    reliability,
)


@pytest.fixture
def sample() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 500)
    logits = rng.normal(size=(500, 3)) + 1.5 * np.eye(3)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


def test_metrics_agree_with_scikit_learn(sample: tuple[np.ndarray, np.ndarray]) -> None:
    y, proba = sample
    pred = proba.argmax(axis=1)
    m = classification_metrics(y, proba)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["log_loss"] == pytest.approx(log_loss(y, proba))
    assert m["brier"] == pytest.approx(((proba - np.eye(3)[y]) ** 2).sum(axis=1).mean())


def test_decision_rule_is_used_for_labels(sample: tuple[np.ndarray, np.ndarray]) -> None:
    y, proba = sample
    m = classification_metrics(y, proba, pred=np.ones_like(y))
    assert m["accuracy"] == pytest.approx((y == 1).mean())


def test_ece_is_zero_for_perfectly_calibrated_and_large_for_overconfident() -> None:
    y = np.array([0, 0, 1, 1])
    half = np.array([[0.5, 0.5, 0.0]] * 4)
    assert expected_calibration_error(y, half) == pytest.approx(0.0)
    wrong = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    assert expected_calibration_error(y, wrong) == pytest.approx(1.0)


def test_confusion_counts() -> None:
    assert confusion(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1])).tolist() == [
        [1, 0, 0],
        [0, 0, 1],
        [0, 1, 1],
    ]


def test_bootstrap_interval_contains_point_estimate(sample: tuple[np.ndarray, np.ndarray]) -> None:
    y, proba = sample
    pred = proba.argmax(axis=1)
    groups = np.arange(len(y)) // 10
    ci = bootstrap_interval(y, pred, groups, reps=300, seed=1)
    acc = (pred == y).mean()
    assert ci["accuracy"][0] < acc < ci["accuracy"][1]
    assert ci["macro_f1"][1] - ci["macro_f1"][0] < 0.2
    assert bootstrap_interval(y, pred, groups, reps=50, seed=1) == bootstrap_interval(
        y, pred, groups, reps=50, seed=1
    )


def test_reliability_bins_cover_all_rows(sample: tuple[np.ndarray, np.ndarray]) -> None:
    y, proba = sample
    rel = reliability(y, proba)
    assert sum(rel["count_0"]) == len(y)
