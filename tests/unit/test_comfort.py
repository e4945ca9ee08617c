"""The comfort formulas give what pythermalcomfort gives, on floats as on arrays."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from conforto._physics.comfort import (
    dynamic_clothing,
    operative_temperature,
    pmv_iso_7730,
    ppd_from_pmv,
    relative_air_speed,
)
from conforto._physics.features import SCALAR_ROWS, fast_features


@pytest.fixture(scope="module")
def reference() -> SimpleNamespace:
    """pythermalcomfort's functions, imported when a test compares with them: its forty-odd
    models take a second to import, which every pytest worker would pay to collect."""
    from pythermalcomfort.clothing import clo_dynamic_ashrae
    from pythermalcomfort.environment import operative_tmp, v_relative
    from pythermalcomfort.models import pmv_ppd_iso

    return SimpleNamespace(
        clo_dynamic_ashrae=clo_dynamic_ashrae,
        operative_tmp=operative_tmp,
        v_relative=v_relative,
        pmv_ppd_iso=pmv_ppd_iso,
    )


@pytest.fixture(scope="module")
def rooms() -> dict[str, np.ndarray]:
    """Random rooms and people well beyond ISO 7730's limits: every branch of the formulas
    (met below and above 1 and 1.2, light and heavy clothing, still and fast air)."""
    rng = np.random.default_rng(0)
    n = 20_000
    return {
        "ta": rng.uniform(0.0, 45.0, n),
        "tr": rng.uniform(0.0, 55.0, n),
        "vel": rng.choice([0.0, 0.05, 0.1, 0.3, 1.0, 3.0], n) * rng.uniform(0.5, 1.5, n),
        "rh": rng.uniform(0.0, 100.0, n),
        "met": rng.uniform(0.7, 4.0, n),
        "clo": rng.choice([0.0, 0.3, 0.5, 1.0, 2.5], n) * rng.uniform(0.8, 1.2, n),
        "t_mot_isd": rng.uniform(0.0, 40.0, n),
    }


def test_relative_air_speed_and_dynamic_clothing_match_pythermalcomfort(
    rooms: dict[str, np.ndarray], reference: SimpleNamespace
) -> None:
    vel, met, clo = rooms["vel"], rooms["met"], rooms["clo"]
    np.testing.assert_array_equal(relative_air_speed(vel, met), reference.v_relative(vel, met))
    np.testing.assert_array_equal(
        dynamic_clothing(clo, met), reference.clo_dynamic_ashrae(clo, met)
    )


def test_operative_temperature_matches_pythermalcomfort(
    rooms: dict[str, np.ndarray], reference: SimpleNamespace
) -> None:
    ta, tr, vel = rooms["ta"], rooms["tr"], rooms["vel"]
    expected = reference.operative_tmp(tdb=ta, tr=tr, v=vel)
    np.testing.assert_allclose(operative_temperature(ta, tr, vel), expected, rtol=0, atol=1e-12)


def test_pmv_and_ppd_match_pythermalcomfort(
    rooms: dict[str, np.ndarray], reference: SimpleNamespace
) -> None:
    ta, tr, rh, met = rooms["ta"], rooms["tr"], rooms["rh"], rooms["met"]
    vr = relative_air_speed(rooms["vel"], met)
    clo = dynamic_clothing(rooms["clo"], met)
    expected = reference.pmv_ppd_iso(
        tdb=ta, tr=tr, vr=vr, rh=rh, met=met, clo=clo, limit_inputs=False, round_output=False
    )
    pmv = pmv_iso_7730(ta, tr, vr, rh, met, clo)
    np.testing.assert_allclose(pmv, expected.pmv, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ppd_from_pmv(pmv), expected.ppd, rtol=0, atol=1e-9)


def test_limited_pmv_matches_pythermalcomfort(
    rooms: dict[str, np.ndarray], reference: SimpleNamespace
) -> None:
    ta, tr, rh, met = rooms["ta"], rooms["tr"], rooms["rh"], rooms["met"]
    vr, clo = relative_air_speed(rooms["vel"], met), dynamic_clothing(rooms["clo"], met)
    with pytest.warns(UserWarning, match="outside the applicability limits"):
        expected = reference.pmv_ppd_iso(
            tdb=ta, tr=tr, vr=vr, rh=rh, met=met, clo=clo, round_output=False
        )
    got = fast_features(rooms)
    assert np.isnan(expected.pmv).sum() > 1000  # the limits are exercised
    np.testing.assert_allclose(got["pmv_iso"], expected.pmv, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got["ppd_iso"], expected.ppd, rtol=0, atol=1e-9)


def test_a_few_rows_on_floats_give_what_many_rows_on_arrays_give(
    rooms: dict[str, np.ndarray],
) -> None:
    """A request's rows take the Python-float path; they must equal the NumPy path's, NaN and
    impossible inputs included."""
    inputs = {k: v[:2000].copy() for k, v in rooms.items()}
    rng = np.random.default_rng(1)
    for name in ("ta", "vel", "met", "clo", "t_mot_isd"):
        inputs[name][rng.choice(2000, 100, replace=False)] = np.nan
    inputs["met"][:5] = 0.0  # division by zero in the dynamic clothing
    inputs["vel"][5:10] = -0.1  # negative square root
    with np.errstate(invalid="ignore", divide="ignore"):
        many = fast_features(inputs)
    for start in range(0, 2000, SCALAR_ROWS):
        few = fast_features({k: v[start : start + SCALAR_ROWS] for k, v in inputs.items()})
        for name, values in few.items():
            np.testing.assert_allclose(
                values, many[name][start : start + SCALAR_ROWS], rtol=0, atol=1e-10, err_msg=name
            )
