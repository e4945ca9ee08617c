"""Prediction sets: calibration against the definition, coverage on data with a known answer."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from conforto._scoring import oof
from conforto._uncertainty.calibration import (
    calibrate,
    coverage_misses,
    coverage_report,
    cross_conformal_sets,
)
from conforto._uncertainty.sets import GRID, ConformalSets, score_grid, sets_as_text
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
    for by, rare_ok in (("all", False), ("class", True)):
        sets = calibrate(*cal, by=by).sets(proba, 0.9, proba.argmax(axis=1))
        per_class = [covered(sets[y == k], y[y == k]) for k in range(3)]
        assert (abs(per_class[0] - 0.9) < 0.02) is rare_ok, per_class


def test_class_conditional_calibration_needs_every_class() -> None:
    proba, y = draw(100, seed=13)
    with pytest.raises(DataError, match="no warm vote"):
        calibrate(proba[y != 2], y[y != 2], by="class")


def test_stored_form_round_trips_and_refuses_another_grid() -> None:
    proba, y = draw(1_000, seed=14)
    climates = ["tropical savanna", "temperate"] * 500
    calibration = calibrate(proba, y, by="climate", climates=climates, buildings=np.arange(1_000))
    again = ConformalSets.from_dict(calibration.to_dict())
    assert again.by == "climate"
    assert again.climates == ("temperate", "tropical savanna")
    assert again.rows == 1_000
    assert np.allclose(again.pvalues, calibration.pvalues, atol=1e-7)
    with pytest.raises(ValueError, match=f"this conforto reads {GRID}"):
        ConformalSets.from_dict({**calibration.to_dict(), "grid": 101})


def overconfident(y: np.ndarray, seed: int) -> np.ndarray:
    """Probabilities sharpened towards a random class two times in three."""
    rng = np.random.default_rng(seed)
    guess = np.where(rng.random(len(y)) < 1 / 3, y, rng.integers(0, 3, len(y)))
    logits = rng.normal(size=(len(y), 3)) + 3.0 * np.eye(3)[guess]
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def climate_frame(rows: int, seed: int, buildings: int = 200) -> pd.DataFrame:
    """Votes from two climates; the model is overconfident in the hot one only."""
    proba, y = draw(rows, seed)
    rng = np.random.default_rng(seed)
    hot = rng.random(rows) < 0.2
    proba[hot] = overconfident(y[hot], seed)
    pred = frame(proba, y).assign(
        climate=np.where(hot, "hot desert", "temperate"),
        building_id=rng.integers(0, buildings, rows),
    )
    pred["fold"] = pred["building_id"] % 5  # folds grouped by building
    return pred


def test_sets_by_climate_cover_each_climate() -> None:
    pred = climate_frame(20_000, seed=20)
    hot = (pred["climate"] == "hot desert").to_numpy()
    y = pred["y"].to_numpy()
    for by, hot_ok in (("all", False), ("climate", True)):
        sets = cross_conformal_sets(pred, [0.9], by=by)[0.9]
        assert (abs(covered(sets[hot], y[hot]) - 0.9) < 0.02) is hot_ok
        assert abs(covered(sets, y) - 0.9) < 0.015
    report = coverage_report(pred, by="climate")
    assert report["by"] == "climate"
    assert coverage_misses(report) == []


def test_a_climate_of_few_buildings_and_rows_without_one_use_all_votes() -> None:
    pred = climate_frame(6_000, seed=21)
    few = pred["building_id"].isin([0, 1]) & (pred["climate"] == "temperate")
    pred.loc[few, "climate"] = "tundra"  # two buildings: no calibration of its own
    climates = pred["climate"].tolist()
    calibration = calibrate(
        oof.probabilities(pred),
        pred["y"].to_numpy(),
        by="climate",
        climates=climates,
        buildings=pred["building_id"].to_numpy(),
    )
    assert calibration.climates == ("hot desert", "temperate")
    assert calibration.curve_of(["tundra", None, "hot desert", "mars"], 4).tolist() == [0, 0, 1, 0]
    proba = oof.probabilities(pred)[:5]
    assert np.array_equal(
        calibration.member(proba, 0.9, ["tundra"] * 5), calibration.member(proba, 0.9, None)
    )


def test_sets_are_joined_in_class_order() -> None:
    assert sets_as_text(np.array([[True, False, True], [False, True, False]])) == [
        "cool|warm",
        "neutral",
    ]


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
    within = by_value["temperate"]["within"]
    assert within is not None
    assert all(within)
    assert {(m["value"], m["level"]) for m in coverage_misses(report)} >= {("tropical", 0.9)}
    assert "temperate" not in {m["value"] for m in coverage_misses(report)}


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
