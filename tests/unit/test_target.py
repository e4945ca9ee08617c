from __future__ import annotations

import numpy as np

from conforto._data.target import CLASSES, ThermalClass, sensation_class, sensation_vote


def test_sensation_class_band_edges_are_neutral() -> None:
    votes = [-3, -0.51, -0.5, 0, 0.5, 0.51, 3, np.nan]
    assert sensation_class(votes)[:-1].tolist() == [0, 0, 1, 1, 1, 2, 2]
    assert np.isnan(sensation_class(votes)[-1])


def test_sensation_vote_rounds_halves_away_from_zero() -> None:
    assert sensation_vote([-2.5, -1.4, 0.49, 1.5, 2.4]).tolist() == [-3, -1, 0, 2, 2]


def test_classes_are_ordered_enum() -> None:
    assert [c.value for c in CLASSES] == ["cool", "neutral", "warm"]
    assert ThermalClass("warm") is ThermalClass.WARM
