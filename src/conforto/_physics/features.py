"""Physics features, computed vectorised.

Comfort indices per row: PMV/PPD after ISO 7730 and ASHRAE 55, the standard effective
temperature (SET), the operative temperature, and the ASHRAE 55 adaptive comfort temperature
from the running-mean outdoor temperature with the distance to it. Inputs outside a model's
applicability give NaN, never an exception. Following the database's own method, PMV uses the
relative air speed and the dynamic clothing insulation. The per-request features come from
:mod:`conforto._physics.comfort` (NumPy); SET and the ASHRAE PMV from pythermalcomfort,
imported only when asked for.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from conforto._physics.comfort import (
    FAST_FEATURES,
    PHYSICS_INPUTS,
    Floats,
    adaptive_comfort_temperature,
    dynamic_clothing,
    operative_temperature,
    pmv_ppd_limited,
    relative_air_speed,
)

if TYPE_CHECKING:  # frames only in comfort_features: the service never imports pandas
    from collections.abc import Callable, Iterable, Mapping

    import pandas as pd

FloatArray = npt.NDArray[np.float64]
#: Up to this many rows, the formulas run on Python floats [rows].
SCALAR_ROWS = 16

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

__all__ = [
    "FAST_FEATURES",
    "FEATURES",
    "PHYSICS_INPUTS",
    "comfort_arrays",
    "comfort_features",
    "pmv_ppd",
]


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
    """PMV [-] and PPD [%] after ISO 7730, the way the database computed its own ``pmv``
    column: :func:`conforto._physics.comfort.pmv_ppd_limited` (same parameters and units) for any
    array-likes, broadcast together and returned as float arrays; NaN where an input is missing
    or outside ISO 7730's limits.

    Examples
    --------
    >>> pmv, ppd = pmv_ppd(25.0, 25.0, 0.1, 50.0, 1.2, 0.5)
    >>> round(float(pmv[0]), 2), round(float(ppd[0]), 1)
    (-0.09, 5.2)
    """
    ta, tr, vel, rh, met, clo = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(x, dtype=np.float64)) for x in (ta, tr, vel, rh, met, clo))
    )
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        pmv, ppd = pmv_ppd_limited(ta, tr, vel, rh, met, clo)
    return np.asarray(pmv, dtype=np.float64), np.asarray(ppd, dtype=np.float64)


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
    inputs = {c: _col(frame, c) for c in PHYSICS_INPUTS}
    import pandas as pd

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
    given = {c: np.asarray(inputs.get(c, missing), dtype=np.float64) for c in PHYSICS_INPUTS}
    given["tr"] = np.where(np.isnan(given["tr"]), ta, given["tr"])
    out: dict[str, FloatArray] = dict(fast_features(given))
    if "pmv_ashrae" in names:
        from pythermalcomfort.models import pmv_ppd_ashrae

        out["pmv_ashrae"] = _guarded(
            lambda ok, x: (
                pmv_ppd_ashrae(
                    tdb=x["ta"][ok],
                    tr=x["tr"][ok],
                    vr=relative_air_speed(x["vel"][ok], x["met"][ok]),
                    rh=x["rh"][ok],
                    met=x["met"][ok],
                    clo=dynamic_clothing(x["clo"][ok], x["met"][ok]),
                    limit_inputs=True,
                    round_output=False,
                ).pmv
            ),
            given,
        )
    if "set" in names:
        from pythermalcomfort.models import set_tmp

        out["set"] = _guarded(
            lambda ok, x: (
                set_tmp(
                    tdb=x["ta"][ok],
                    tr=x["tr"][ok],
                    v=x["vel"][ok],
                    rh=x["rh"][ok],
                    met=x["met"][ok],
                    clo=x["clo"][ok],
                    limit_inputs=True,
                    round_output=False,
                ).set
            ),
            given,
        )
    return {n: out[n] for n in names}


def _guarded(
    compute: Callable[[npt.NDArray[np.bool_], dict[str, FloatArray]], FloatArray],
    inputs: dict[str, FloatArray],
) -> FloatArray:
    """Run ``compute(mask, inputs)`` on rows with all comfort inputs finite and a positive
    metabolic rate; NaN elsewhere.
    """
    values = [inputs[c] for c in ("ta", "tr", "vel", "rh", "met", "clo")]
    ok = np.logical_and.reduce([np.isfinite(x) for x in values]) & (inputs["met"] > 0)
    out = np.full(ok.shape, np.nan)
    if ok.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[ok] = np.asarray(compute(ok, inputs), dtype=np.float64)
    return out


def _features_of_row(
    ta: float, tr: float, rh: float, vel: float, met: float, clo: float, t_mot: float
) -> tuple[float, float, float, float, float]:
    """:func:`fast_features` of one row, on Python floats: NaN where NumPy gives NaN or
    infinity (negative square root, division by zero, overflow) instead of an exception.
    """
    try:
        t_op = operative_temperature(ta, tr, 0.0 if math.isnan(vel) else vel, Floats)
    except (ArithmeticError, ValueError):
        t_op = math.nan
    try:
        pmv, ppd = pmv_ppd_limited(ta, tr, vel, rh, met, clo, Floats)
    except (ArithmeticError, ValueError):
        pmv = ppd = math.nan
    t_cmf = adaptive_comfort_temperature(t_mot, Floats)
    return t_op, pmv, ppd, t_cmf, t_op - t_cmf


def fast_features(inputs: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    """``t_op``, ``pmv_iso``, ``ppd_iso``, ``t_cmf`` and ``dt_cmf`` for every row.

    Parameters
    ----------
    inputs
        Float arrays of equal length: ``ta``, ``tr`` (missing values already taken equal to
        ``ta``), ``rh``, ``vel``, ``met``, ``clo``, ``t_mot_isd`` [°C, °C, %, m/s, met, clo, °C];
        NaN marks a missing value.

    Returns
    -------
    dict
        Feature name → float array; NaN where a feature does not apply.
    """
    ta, tr, rh, vel, met, clo, t_mot = (inputs[c] for c in PHYSICS_INPUTS)
    if len(ta) > SCALAR_ROWS:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            t_op = operative_temperature(ta, tr, np.where(np.isnan(vel), 0.0, vel))
            pmv, ppd = pmv_ppd_limited(ta, tr, vel, rh, met, clo)
        t_cmf = adaptive_comfort_temperature(t_mot)
        features: tuple[Any, ...] = (t_op, pmv, ppd, t_cmf, t_op - t_cmf)
    else:
        columns = (x.tolist() for x in (ta, tr, rh, vel, met, clo, t_mot))
        rows = [_features_of_row(*row) for row in zip(*columns, strict=True)]
        features = tuple(np.array(rows, dtype=np.float64).reshape(-1, len(FAST_FEATURES)).T)
    return dict(zip(FAST_FEATURES, features, strict=True))
