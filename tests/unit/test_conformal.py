"""Prediction sets: calibration against the definition, coverage on data with a known answer."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from conforto.conformal import GRID, ConformalSets, joined, score_grid
from conforto.coverage import calibrate, coverage_report, cross_conformal_sets, misses
from conforto.errors import DataError

CLASSES = ("cool", "neutral", "warm")


def draw(rows: int, seed: int, share: tuple[float, ...] = (1, 1, 1)) -> tuple[np.ndarray, ...]:
    """Probabilities that are the truth: each vote is drawn from its row's probabilities."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(share, size=rows)
    y = (rng.random(rows)[:, None] > proba.cumsum(axis=1)).sum(axis=1)
    return proba, y.astype(np.int64)


def frame(proba: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = pd.DataFrame(
        {"fold": rng.integers(0, folds, len(y)), "y": y, "decision": proba.argmax(axis=1)}
    )
    for k, name in enumerate(CLASSES):
        out[f"p_{name}"] = proba[:, k]
    return out


def covered(sets: np.ndarray, y: np.ndarray) -> float:
    return float(sets[np.arange(len(y)), y].mean())


def test_membership_follows_the_definition_of_the_conformal_p_value() -> None:
    proba, y = draw(500, seed=1)
    calibration = calibrate(proba, y)
    scores = 1.0 - proba[np.arange(len(y)), y]
    # test scores on grid points: the stored p-value is then exact, (#{calibration ≥ s} + 1)/(n + 1)
    test = np.random.default_rng(2).choice(score_grid(), size=(300, 3))
    pvalue = ((scores[None, None, :] >= test[:, :, None]).sum(axis=2) + 1) / (len(y) + 1)
    for level in (0.5, 0.8, 0.9, 0.99):
        assert np.array_equal(calibration.member(1.0 - test, level), pvalue > 1.0 - level)


@pytest.mark.parametrize("level", [0.8, 0.9, 0.95])
def test_sets_cover_new_data_at_their_level(level: float) -> None:
    calibration = calibrate(*draw(20_000, seed=3))
    proba, y = draw(20_000, seed=4)
    sets = calibration.sets(proba, level, proba.argmax(axis=1))
    assert abs(covered(sets, y) - level) < 0.01  # binomial standard error ~0.002
    assert sets.any(axis=1).all()


def test_higher_levels_give_larger_sets() -> None:
    calibration = calibrate(*draw(5_000, seed=5))
    proba, _ = draw(2_000, seed=6)
    sizes = [calibration.member(proba, lv).sum(axis=1) for lv in (0.5, 0.8, 0.9, 0.99)]
    assert all((a <= b).all() for a, b in itertools.pairwise(sizes))
    assert sizes[0].mean() < sizes[-1].mean()


def test_each_row_may_ask_its_own_level() -> None:
    calibration = calibrate(*draw(5_000, seed=7))
    proba, _ = draw(4, seed=8)
    levels = np.array([0.5, 0.99, 0.5, 0.99])
    mixed = calibration.member(proba, levels)
    assert np.array_equal(mixed[::2], calibration.member(proba[::2], 0.5))
    assert np.array_equal(mixed[1::2], calibration.member(proba[1::2], 0.99))


def test_the_decided_class_is_always_in_the_set() -> None:
    calibration = calibrate(*draw(5_000, seed=9))
    proba, _ = draw(1_000, seed=10)
    decision = proba.argmin(axis=1)  # a rule at odds with the probabilities, still in the set
    sets = calibration.sets(proba, 0.5, decision)
    assert sets[np.arange(1_000), decision].all()


def test_class_conditional_sets_cover_every_class() -> None:
    # a rare class: sets over all votes under-cover it, class-conditional ones do not
    cal, test = draw(30_000, seed=11, share=(0.3, 3, 1)), draw(30_000, seed=12, share=(0.3, 3, 1))
    proba, y = test
    for mondrian, rare_ok in ((False, False), (True, True)):
        sets = calibrate(*cal, mondrian=mondrian).sets(proba, 0.9, proba.argmax(axis=1))
        per_class = [covered(sets[y == k], y[y == k]) for k in range(3)]
        assert (abs(per_class[0] - 0.9) < 0.02) is rare_ok, per_class


def test_class_conditional_calibration_needs_every_class() -> None:
    proba, y = draw(100, seed=13)
    with pytest.raises(DataError, match="no warm vote"):
        calibrate(proba[y != 2], y[y != 2], mondrian=True)


def test_stored_form_round_trips_and_refuses_another_grid() -> None:
    calibration = calibrate(*draw(1_000, seed=14), mondrian=True)
    again = ConformalSets.from_dict(calibration.to_dict())
    assert again.mondrian
    assert again.rows == 1_000
    assert np.allclose(again.pvalues, calibration.pvalues, atol=1e-7)
    with pytest.raises(ValueError, match=f"this conforto reads {GRID}"):
        ConformalSets.from_dict({**calibration.to_dict(), "grid": 101})


def test_sets_are_joined_in_class_order() -> None:
    assert joined(np.array([[True, False, True], [False, True, False]])) == ["cool|warm", "neutral"]


def test_cross_conformal_coverage_and_a_slice_that_misses() -> None:
    proba, y = draw(20_000, seed=15)
    pred = frame(proba, y).assign(climate="temperate")
    # an overconfident slice: its probabilities sharpened towards a random class
    odd = np.arange(len(y)) < 1_000
    rng = np.random.default_rng(16)
    sharp = np.eye(3)[rng.integers(0, 3, odd.sum())] * 0.9 + 0.1 / 3
    pred.loc[odd, [f"p_{n}" for n in CLASSES]] = sharp
    pred.loc[odd, "climate"] = "tropical"
    pred["decision"] = pred[[f"p_{n}" for n in CLASSES]].to_numpy().argmax(axis=1)
    report = coverage_report(pred)
    assert report["levels"] == [0.8, 0.9, 0.95]
    by_value = {e["value"]: e for e in report["slices"]["climate"]}
    assert by_value["tropical"]["coverage"][1] < 0.85  # sharp and wrong two times in three
    assert all(by_value["temperate"]["within"])
    assert {(m["value"], m["level"]) for m in misses(report)} >= {("tropical", 0.9)}
    assert "temperate" not in {m["value"] for m in misses(report)}


def test_cross_conformal_needs_folds() -> None:
    proba, y = draw(100, seed=17)
    with pytest.raises(DataError, match="≥ 2 folds"):
        cross_conformal_sets(frame(proba, y, folds=1), [0.9])


def test_a_stored_calibration_applied_to_other_data() -> None:
    calibration = calibrate(*draw(10_000, seed=18))
    proba, y = draw(10_000, seed=19)
    report = coverage_report(frame(proba, y).assign(fold=-1), calibration=calibration)
    assert "10000 out-of-fold votes" in report["method"]
    assert report["overall"]["within"] == [True, True, True]
