"""The confidence calibration: a known truth recovered, applied with NumPy, stored losslessly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conforto._uncertainty.confidence import ConfidenceCalibration, fit_confidence
from conforto._uncertainty.estimate import cross_fitted
from conforto.errors import DataError

SLOPE, INTERCEPTS = 0.7, (0.4, -0.1, 0.3)


def answered(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities, votes and answers where the answer is right with probability
    sigmoid(SLOPE · logit(p) + INTERCEPTS[answer]), not p: a model too sure of itself when
    sure, too cautious when not, the more so for cool and warm answers."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet([2.0, 3.0, 2.0], n)
    decision = proba.argmax(axis=1)
    p = proba[np.arange(n), decision]
    z = SLOPE * np.log(p / (1 - p)) + np.asarray(INTERCEPTS)[decision]
    right = rng.random(n) < 1 / (1 + np.exp(-z))
    other = (decision + rng.integers(1, 3, n)) % 3
    return proba, np.where(right, decision, other), decision


def test_the_fit_recovers_the_truth_and_the_estimate_follows() -> None:
    proba, y, decision = answered(40_000, 0)
    calibration = fit_confidence(proba, y, decision)
    assert calibration.slope == pytest.approx(SLOPE, abs=0.05)
    assert calibration.intercepts == pytest.approx(INTERCEPTS, abs=0.06)
    right = calibration.right(proba, decision)
    for k in range(3):
        rows = decision == k
        realised = (y == decision)[rows].mean()
        assert right[rows].mean() == pytest.approx(realised, abs=0.01)
        # the probabilities as they are miss the accuracy of cool and warm answers
        if k != 1:
            assert abs(proba[rows, k].mean() - realised) > 0.03


def test_recalibrated_probabilities_keep_the_models_share_among_the_other_classes() -> None:
    calibration = ConfidenceCalibration(1.0, (0.5, 0.5, 0.5))
    proba = np.array([[0.6, 0.3, 0.1], [0.0, 1.0, 0.0]])
    decision = np.array([0, 1])
    q = calibration.recalibrated(proba, decision)
    assert q.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert q[[0, 1], decision] == pytest.approx(calibration.right(proba, decision))
    assert q[0, 1] / q[0, 2] == pytest.approx(3.0)  # as the model shared the rest
    assert q[1, 0] == pytest.approx(q[1, 2])  # evenly where the model gave the rest nothing


def test_the_stored_form_reads_back_the_same_calibration() -> None:
    proba, y, decision = answered(3000, 1)
    calibration = fit_confidence(proba, y, decision)
    again = ConfidenceCalibration.from_dict(json.loads(json.dumps(calibration.to_dict())))
    assert again == calibration
    assert again.rows == 3000


def test_answers_all_right_leave_nothing_to_calibrate() -> None:
    proba = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]])
    with pytest.raises(DataError, match="all right or all wrong"):
        fit_confidence(proba, np.array([0, 1]), np.array([0, 1]))


def test_cross_fitting_calibrates_each_fold_on_the_others() -> None:
    proba, y, decision = answered(6000, 2)
    fold = np.arange(6000) % 3
    frame = pd.DataFrame(
        {"fold": fold, "y": y, "decision": decision}
        | {f"p_{k}": proba[:, i] for i, k in enumerate(("cool", "neutral", "warm"))}
    )
    out = cross_fitted(frame)
    first = fold == 0
    others = fit_confidence(proba[~first], y[~first], decision[~first])
    assert out[first] == pytest.approx(others.recalibrated(proba[first], decision[first]))
    with pytest.raises(DataError, match="≥ 2"):
        cross_fitted(frame.assign(fold=0))
