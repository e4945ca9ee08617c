from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conforto._physics.comfort import adaptive_comfort_temperature, operative_temperature
from conforto._physics.features import (
    FEATURES,
    comfort_features,
    pmv_ppd,
)


def test_pmv_matches_pythermalcomfort_reference() -> None:
    # pythermalcomfort's documented example gives PMV 0.17 with clo_dynamic 0.5;
    # Our clo is the static one; clo_dynamic_ashrae(0.5, 1.4) = 0.443, so PMV is a little lower.
    pmv, ppd = pmv_ppd(25.0, 25.0, 0.1, 50.0, 1.4, 0.5)
    assert pmv[0] == pytest.approx(0.06, abs=0.02)
    assert ppd[0] == pytest.approx(5.1, abs=0.2)


def test_pmv_is_nan_outside_applicability_and_for_missing_inputs() -> None:
    pmv, ppd = pmv_ppd(
        [38.0, 22.0, 22.0],
        [38.0, 22.0, 22.0],
        [0.1, np.nan, 0.1],
        [50.0, 50.0, 50.0],
        [1.2, 1.2, 1.2],
        [0.5, 0.5, 0.5],
    )
    assert np.isnan(pmv[0])
    assert np.isnan(ppd[0])
    assert np.isnan(pmv[1])  # missing air speed
    assert np.isfinite(pmv[2])


def test_pmv_increases_with_temperature() -> None:
    pmv, _ = pmv_ppd([20.0, 23.0, 26.0], [20.0, 23.0, 26.0], 0.1, 50.0, 1.2, 0.6)
    assert np.all(np.diff(pmv) > 0)


def test_comfort_features_never_crash_and_give_nan_where_inapplicable() -> None:
    frame = pd.DataFrame(
        {
            "ta": [22.0, 45.0, np.nan, 24.0],
            "tr": [np.nan, 45.0, 20.0, 24.0],
            "rh": [50.0, 50.0, 50.0, 101.0],
            "vel": [0.1, 3.0, 0.1, 0.1],
            "met": [1.2, 1.2, 1.2, 0.0],
            "clo": [0.6, 0.6, 0.6, 0.6],
            "t_mot_isd": [20.0, 40.0, 20.0, 5.0],
        }
    )
    features = comfort_features(frame, FEATURES)
    assert list(features.columns) == list(FEATURES)
    assert np.isfinite(features.loc[0, ["t_op", "pmv_iso", "set", "t_cmf", "dt_cmf"]]).all()
    assert features["t_op"].iloc[0] == pytest.approx(22.0)  # tr missing -> taken equal to ta
    assert np.isnan(features["pmv_iso"].iloc[1])
    assert np.isnan(features["t_cmf"].iloc[1])
    assert features.loc[2].drop("t_cmf").isna().all()  # no air temperature: only t_cmf is known
    assert np.isnan(features["pmv_iso"].iloc[3])
    assert np.isnan(features["set"].iloc[3])


def test_comfort_features_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown features"):
        comfort_features(pd.DataFrame({"ta": [20.0]}), ["pmv_iso", "utci"])


def test_operative_temperature_weights_radiant_and_air() -> None:
    assert operative_temperature(np.array([20.0]), np.array([30.0]), np.array([0.1]))[
        0
    ] == pytest.approx(25.0)


def test_adaptive_comfort_temperature_range() -> None:
    t = adaptive_comfort_temperature(np.array([10.0, 33.5, 9.9, 33.6]))
    assert t[:2].tolist() == pytest.approx([20.9, 28.185])
    assert np.isnan(t[2:]).all()
