from __future__ import annotations

import numpy as np
import pytest

from conforto._training.baselines import ProbabilisticPMV, majority_proba, pmv_class


def test_majority_proba_is_training_frequency() -> None:
    p = majority_proba(np.array([1, 1, 1, 0]), 2)
    assert p.tolist() == [[0.25, 0.75, 0.0]] * 2


def test_pmv_class_bins_like_votes() -> None:
    assert pmv_class(np.array([-1.0, -0.5, 0.2, 0.6, np.nan])).tolist() == [0, 1, 1, 2, -1]


def test_probabilistic_pmv_learns_direction_and_round_trips() -> None:
    rng = np.random.default_rng(0)
    pmv = rng.uniform(-2, 2, 3000)
    y = np.clip(np.round(pmv + rng.normal(0, 0.6, 3000)), -1, 1).astype(int) + 1
    baseline = ProbabilisticPMV().fit(np.append(pmv, np.nan), np.append(y, 1))
    p = baseline.predict_proba(np.array([-1.5, 0.0, 1.5, np.nan]))
    assert p[0].argmax() == 0
    assert p[1].argmax() == 1
    assert p[2].argmax() == 2
    assert np.isnan(p[3]).all()
    again = ProbabilisticPMV.from_dict(baseline.to_dict())
    assert np.allclose(again.predict_proba(pmv[:50]), baseline.predict_proba(pmv[:50]))
    assert p[:3].sum(axis=1) == pytest.approx([1, 1, 1])


def test_logistic_candidate_handles_missing_values_and_categories() -> None:
    from conforto._training.baselines import logistic_candidate

    rng = np.random.default_rng(1)
    x = np.column_stack([rng.normal(25, 3, 400), rng.integers(0, 3, 400).astype(float)])
    y = (x[:, 0] > 24).astype(int) + (x[:, 0] > 27).astype(int)
    x[::7, 0] = np.nan
    x[::5, 1] = np.nan
    p = logistic_candidate([0], [1]).fit(x, y).predict_proba(x)
    assert p.shape == (400, 3)
    assert np.allclose(p.sum(axis=1), 1.0)
    assert (p.argmax(axis=1) == y)[~np.isnan(x[:, 0])].mean() > 0.7
