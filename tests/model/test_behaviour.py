"""Behavioural expectations that hold for any sensible thermal-sensation model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conforto.artifact import load_model
from conforto.data import load_dataset

pytestmark = pytest.mark.integration

#: Largest drop of P(warm) allowed when only the air temperature rises by 1 °C.
TOLERANCE = 0.05


def _rows(**values: float | str) -> pd.DataFrame:
    return pd.DataFrame([values])


def test_warmer_air_never_lowers_p_warm(full_model: Path, dev_paths: tuple[Path, Path]) -> None:
    model = load_model(full_model)
    base = load_dataset(*dev_paths).frame.sample(500, random_state=0)
    previous = None
    for ta in np.arange(16.0, 34.0, 1.0):
        p_warm = model.predict_proba(base.assign(ta=ta, tr=ta))[:, 2]
        if previous is not None:
            assert (p_warm - previous).min() > -TOLERANCE, f"P(warm) fell at ta={ta}"
        previous = p_warm


def test_hot_humid_still_room_with_heavy_clothing_is_warm(full_model: Path) -> None:
    model = load_model(full_model)
    room = _rows(ta=32.0, tr=32.0, rh=80.0, vel=0.05, met=1.2, clo=1.0, t_mot_isd=28.0)
    assert model.decide(model.predict_proba(room))[0] == 2


def test_cold_room_with_light_clothing_is_cool(full_model: Path) -> None:
    model = load_model(full_model)
    room = _rows(ta=16.0, tr=16.0, rh=40.0, vel=0.2, met=1.0, clo=0.3, t_mot_isd=10.0)
    assert model.decide(model.predict_proba(room))[0] == 0
