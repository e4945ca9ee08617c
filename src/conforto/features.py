"""Physics features from pythermalcomfort, computed vectorised.

Comfort indices per row: PMV/PPD after ISO 7730 and ASHRAE 55, the standard effective
temperature (SET), the operative temperature, and the ASHRAE 55 adaptive comfort temperature
from the running-mean outdoor temperature with the distance to it. Inputs outside a model's
applicability give NaN, never an exception. Following the database's own method, PMV uses the
relative air speed and the dynamic clothing insulation.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping

import numpy as np
import numpy.typing as npt
import pandas as pd
from pythermalcomfort.clothing import clo_dynamic_ashrae
from pythermalcomfort.environment import operative_tmp, v_relative
from pythermalcomfort.models import pmv_ppd_ashrae, pmv_ppd_iso, set_tmp

FloatArray = npt.NDArray[np.float64]

#: Slope and intercept of the ASHRAE 55 adaptive comfort temperature [°C/°C, °C].
ADAPTIVE_SLOPE, ADAPTIVE_INTERCEPT = 0.31, 17.8
#: Running-mean outdoor temperatures where the adaptive model applies [°C].
ADAPTIVE_RANGE = (10.0, 33.5)

#: ISO 7730 applicability limits (inclusive), as pythermalcomfort checks them [°C, °C, m/s,
#: met, clo, Pa, -]; ``vr`` is the relative air speed and ``clo`` the dynamic insulation.
ISO_7730_LIMITS: dict[str, tuple[float, float]] = {
    "tdb": (10.0, 30.0),
    "tr": (10.0, 40.0),
    "vr": (0.0, 1.0),
    "met": (0.8, 4.0),
    "clo": (0.0, 2.0),
    "pa": (0.0, 2700.0),
    "pmv": (-2.0, 2.0),
}

#: Every feature :func:`comfort_features` can compute, with its unit and meaning.
FEATURES: dict[str, tuple[str, str]] = {
    "t_op": ("°C", "Operative temperature (ISO 7726), tr taken equal to ta where missing"),
    "pmv_iso": ("-", "Predicted mean vote, ISO 7730"),
    "ppd_iso": ("%", "Predicted percentage dissatisfied, ISO 7730"),
    "pmv_ashrae": ("-", "Predicted mean vote with cooling effect, ASHRAE 55"),
    "set": ("°C", "Standard effective temperature"),
    "t_cmf": ("°C", "ASHRAE 55 adaptive comfort temperature from t_mot_isd"),
    "dt_cmf": ("°C", "Operative temperature minus the adaptive comfort temperature"),
}

#: Features cheap enough to compute per request (about 0.1 ms each).
FAST_FEATURES: tuple[str, ...] = ("t_op", "pmv_iso", "ppd_iso", "t_cmf", "dt_cmf")


def _col(frame: pd.DataFrame, name: str) -> FloatArray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return frame[name].to_numpy(dtype=np.float64, na_value=np.nan)


def pmv_ppd(
    ta: npt.ArrayLike,
    tr: npt.ArrayLike,
    vel: npt.ArrayLike,
    rh: npt.ArrayLike,
    met: npt.ArrayLike,
    clo: npt.ArrayLike,
) -> tuple[FloatArray, FloatArray]:
    """PMV and PPD after ISO 7730, the way the database computed its own ``pmv`` column.

    The measured air speed becomes the relative air speed and the clothing insulation the
    dynamic one before calling :func:`pythermalcomfort.models.pmv_ppd_iso`.

    Parameters
    ----------
    ta, tr
        Air and mean radiant temperature [°C].
    vel
        Measured air speed [m/s].
    rh
        Relative humidity [%].
    met
        Metabolic rate [met].
    clo
        Clothing insulation [clo].

    Returns
    -------
    tuple of numpy.ndarray
        ``(pmv [-], ppd [%])``, NaN where an input is missing or outside ISO 7730's limits.

    Examples
    --------
    >>> pmv, ppd = pmv_ppd(25.0, 25.0, 0.1, 50.0, 1.2, 0.5)
    >>> round(float(pmv[0]), 2), round(float(ppd[0]), 1)
    (-0.09, 5.2)
    """
    ta, tr, vel, rh, met, clo = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(x, dtype=np.float64)) for x in (ta, tr, vel, rh, met, clo))
    )
    ok = np.isfinite(ta) & np.isfinite(tr) & np.isfinite(vel) & np.isfinite(rh)
    ok &= np.isfinite(met) & np.isfinite(clo) & (met > 0)
    pmv = np.full(ta.shape, np.nan)
    ppd = np.full(ta.shape, np.nan)
    if ok.any():
        m = met[ok]
        vr, clo_dynamic = v_relative(vel[ok], m), clo_dynamic_ashrae(clo[ok], m)
        # pythermalcomfort's own limit check inspects stack frames (~3 ms a call): apply the
        # same ISO 7730 limits here and call it unlimited (~0.1 ms).
        result = pmv_ppd_iso(
            tdb=ta[ok],
            tr=tr[ok],
            vr=vr,
            rh=rh[ok],
            met=m,
            clo=clo_dynamic,
            limit_inputs=False,
            round_output=False,
        )
        pa = rh[ok] * 10.0 * np.exp(16.6536 - 4030.183 / (ta[ok] + 235.0))
        within = np.logical_and.reduce(
            [
                _inside(ta[ok], ISO_7730_LIMITS["tdb"]),
                _inside(tr[ok], ISO_7730_LIMITS["tr"]),
                _inside(vr, ISO_7730_LIMITS["vr"]),
                _inside(m, ISO_7730_LIMITS["met"]),
                _inside(clo_dynamic, ISO_7730_LIMITS["clo"]),
                _inside(pa, ISO_7730_LIMITS["pa"]),
                _inside(result.pmv, ISO_7730_LIMITS["pmv"]),
            ]
        )
        pmv[ok] = np.where(within, result.pmv, np.nan)
        ppd[ok] = np.where(within, result.ppd, np.nan)
    return pmv, ppd


def _inside(x: FloatArray, bounds: tuple[float, float]) -> npt.NDArray[np.bool_]:
    return (x >= bounds[0]) & (x <= bounds[1])


def comfort_features(frame: pd.DataFrame, names: Iterable[str] = FAST_FEATURES) -> pd.DataFrame:
    """Compute physics features for every row of ``frame``.

    Parameters
    ----------
    frame
        Canonical columns ``ta``, ``rh``, ``vel``, ``met``, ``clo`` and, when available, ``tr``
        (else taken equal to ``ta``) and ``t_mot_isd`` (running-mean outdoor temperature).
    names
        Which of :data:`FEATURES` to compute.

    Returns
    -------
    pandas.DataFrame
        One column per feature, same index as ``frame``; NaN where a feature does not apply.
    """
    inputs = {c: _col(frame, c) for c in ("ta", "tr", "rh", "vel", "met", "clo", "t_mot_isd")}
    return pd.DataFrame(comfort_arrays(inputs, names), index=frame.index)


def comfort_arrays(
    inputs: Mapping[str, FloatArray], names: Iterable[str] = FAST_FEATURES
) -> dict[str, FloatArray]:
    """:func:`comfort_features` on plain arrays (the serving path: no DataFrame per request).

    Parameters
    ----------
    inputs
        Arrays of equal length for ``ta``, ``rh``, ``vel``, ``met``, ``clo`` [°C, %, m/s, met,
        clo] and optionally ``tr`` and ``t_mot_isd`` [°C]; NaN marks a missing value.
    names
        Which of :data:`FEATURES` to compute.

    Returns
    -------
    dict
        Feature name → array, in the order of ``names``.
    """
    names = list(names)
    unknown = sorted(set(names) - set(FEATURES))
    if unknown:
        raise ValueError(f"unknown features {unknown}; choose from {sorted(FEATURES)}")
    ta = np.asarray(inputs["ta"], dtype=np.float64)
    missing = np.full(ta.shape, np.nan)
    rh, vel, met, clo = (
        np.asarray(inputs.get(c, missing), dtype=np.float64) for c in ("rh", "vel", "met", "clo")
    )
    tr = np.asarray(inputs.get("tr", missing), dtype=np.float64)
    tr = np.where(np.isnan(tr), ta, tr)
    out: dict[str, FloatArray] = {}
    t_op = operative_temperature(ta, tr, vel)
    if "t_op" in names:
        out["t_op"] = t_op
    if {"pmv_iso", "ppd_iso"} & set(names):
        out["pmv_iso"], out["ppd_iso"] = pmv_ppd(ta, tr, vel, rh, met, clo)
    if "pmv_ashrae" in names:
        out["pmv_ashrae"] = _guarded(
            lambda ok: (
                pmv_ppd_ashrae(
                    tdb=ta[ok],
                    tr=tr[ok],
                    vr=v_relative(vel[ok], met[ok]),
                    rh=rh[ok],
                    met=met[ok],
                    clo=clo_dynamic_ashrae(clo[ok], met[ok]),
                    limit_inputs=True,
                    round_output=False,
                ).pmv
            ),
            ta,
            tr,
            vel,
            rh,
            met,
            clo,
        )
    if "set" in names:
        out["set"] = _guarded(
            lambda ok: (
                set_tmp(
                    tdb=ta[ok],
                    tr=tr[ok],
                    v=vel[ok],
                    rh=rh[ok],
                    met=met[ok],
                    clo=clo[ok],
                    limit_inputs=True,
                    round_output=False,
                ).set
            ),
            ta,
            tr,
            vel,
            rh,
            met,
            clo,
        )
    t_cmf = adaptive_comfort_temperature(
        np.asarray(inputs.get("t_mot_isd", missing), dtype=np.float64)
    )
    if "t_cmf" in names:
        out["t_cmf"] = t_cmf
    if "dt_cmf" in names:
        out["dt_cmf"] = t_op - t_cmf
    return {n: out[n] for n in names}


def operative_temperature(ta: npt.ArrayLike, tr: npt.ArrayLike, vel: npt.ArrayLike) -> FloatArray:
    """Operative temperature after ISO 7726 [°C].

    Parameters
    ----------
    ta, tr
        Air and mean radiant temperature [°C].
    vel
        Air speed [m/s]; where missing, the still-air mean of ``ta`` and ``tr`` is used.

    Returns
    -------
    numpy.ndarray
        Operative temperature [°C].

    Examples
    --------
    >>> operative_temperature([20.0], [24.0], [0.1]).tolist()
    [22.0]
    """
    ta, tr, vel = (np.asarray(x, dtype=np.float64) for x in (ta, tr, vel))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = operative_tmp(tdb=ta, tr=tr, v=np.where(np.isnan(vel), 0.0, vel))
    return np.asarray(result, dtype=np.float64)


def adaptive_comfort_temperature(t_running_mean: npt.ArrayLike) -> FloatArray:
    """ASHRAE 55 adaptive comfort temperature [°C], NaN outside 10-33.5 °C running mean.

    Parameters
    ----------
    t_running_mean
        Prevailing (running-mean) outdoor temperature [°C].

    Returns
    -------
    numpy.ndarray
        ``17.8 + 0.31 * t_running_mean`` [°C].

    Examples
    --------
    >>> adaptive_comfort_temperature([20.0, 5.0]).round(1).tolist()
    [24.0, nan]
    """
    t = np.asarray(t_running_mean, dtype=np.float64)
    low, high = ADAPTIVE_RANGE
    valid = (t >= low) & (t <= high)
    return np.where(valid, ADAPTIVE_INTERCEPT + ADAPTIVE_SLOPE * t, np.nan)


def _guarded(compute: object, *inputs: FloatArray) -> FloatArray:
    """Run ``compute(mask)`` on rows with all inputs finite; NaN elsewhere and on failure."""
    ok = np.logical_and.reduce([np.isfinite(x) for x in inputs]) & (inputs[4] > 0)
    out = np.full(inputs[0].shape, np.nan)
    if ok.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[ok] = np.asarray(compute(ok), dtype=np.float64)  # type: ignore[operator]
    return out
