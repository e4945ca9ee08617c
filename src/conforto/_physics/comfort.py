"""The per-request comfort indices, without pythermalcomfort: ISO 7730 PMV/PPD within its
applicability limits, ISO 7726 operative temperature, ASHRAE 55 relative air speed, dynamic
clothing insulation and adaptive comfort temperature.

They compute what pythermalcomfort computes (``pmv_ppd_iso``, ``operative_tmp``,
``v_relative``, ``clo_dynamic_ashrae``; the tests compare them on random inputs and on every row
of the dev data) without importing it: pythermalcomfort loads the numba code of its forty-odd
models at import, about 2 s, most of the service's 3 s start-up budget.

Each formula is written once for a numeric namespace ``xp``: NumPy for many rows, or Python
floats (:class:`Floats`) for the few rows of a request, where NumPy's microsecond per call costs
more than the arithmetic (about 20 µs a row instead of 200 µs a call).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: One met [W/m²].
MET_W_M2 = 58.15
#: Convergence of the clothing surface temperature iteration (ISO 7730 Annex D) [K / 100].
_EPS = 0.00015
#: Most iterations; rows that have not converged by then get NaN [-].
_MAX_ITERATIONS = 150
#: Inputs of :func:`conforto._physics.features.fast_features` [°C, °C, %, m/s, met, clo, °C].
PHYSICS_INPUTS: tuple[str, ...] = ("ta", "tr", "rh", "vel", "met", "clo", "t_mot_isd")
#: What :func:`conforto._physics.features.fast_features` computes, in this order.
FAST_FEATURES: tuple[str, ...] = ("t_op", "pmv_iso", "ppd_iso", "t_cmf", "dt_cmf")

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
#: Slope and intercept of the ASHRAE 55 adaptive comfort temperature [°C/°C, °C].
ADAPTIVE_SLOPE, ADAPTIVE_INTERCEPT = 0.31, 17.8
#: Running-mean outdoor temperatures where the adaptive model applies [°C].
ADAPTIVE_RANGE = (10.0, 33.5)


def _float_rint(x: float) -> float:
    return x if math.isnan(x) or math.isinf(x) else float(round(x))


class Floats:
    """The few NumPy functions the formulas use, for Python floats (``where`` evaluates both
    branches, as ``numpy.where`` does; math errors raise instead of giving NaN).
    """

    exp = staticmethod(math.exp)
    sqrt = staticmethod(math.sqrt)
    rint = staticmethod(_float_rint)

    @staticmethod
    def where(condition: bool, a: float, b: float) -> float:
        """``a`` where ``condition`` holds, else ``b``."""
        return a if condition else b


def relative_air_speed(vel: Any, met: Any, xp: Any = np) -> Any:
    """Relative air speed after ASHRAE 55 / ISO 7730: body movement adds to the measured speed.

    Parameters
    ----------
    vel
        Measured air speed [m/s].
    met
        Metabolic rate [met].
    xp
        ``numpy`` for arrays, :class:`Floats` for Python floats.

    Returns
    -------
    numpy.ndarray or float
        ``vel + 0.3 (met - 1)`` above 1 met, else ``vel`` [m/s], rounded to 1 mm/s.

    Examples
    --------
    >>> relative_air_speed(np.array([0.1, 0.1]), np.array([1.0, 1.5])).tolist()
    [0.1, 0.25]
    """
    return xp.where(met > 1, xp.rint((vel + 0.3 * (met - 1)) * 1000.0) / 1000.0, vel)


def dynamic_clothing(clo: Any, met: Any, xp: Any = np) -> Any:
    """Dynamic clothing insulation after ASHRAE 55-2023: movement pumps air through clothing.

    Parameters
    ----------
    clo
        Clothing insulation [clo].
    met
        Metabolic rate [met], positive.
    xp
        ``numpy`` for arrays, :class:`Floats` for Python floats.

    Returns
    -------
    numpy.ndarray or float
        ``clo (0.6 + 0.4 / met)`` above 1.2 met, else ``clo`` [clo], rounded to 0.001 clo.

    Examples
    --------
    >>> dynamic_clothing(np.array([0.5, 0.5]), np.array([1.0, 2.0])).tolist()
    [0.5, 0.4]
    """
    return xp.where(met > 1.2, xp.rint(clo * (0.6 + 0.4 / met) * 1000.0) / 1000.0, clo)


def operative_temperature(ta: Any, tr: Any, vel: Any, xp: Any = np) -> Any:
    """Operative temperature after ISO 7726 [°C].

    Parameters
    ----------
    ta, tr
        Air and mean radiant temperature [°C].
    vel
        Air speed [m/s], not negative.
    xp
        ``numpy`` for arrays, :class:`Floats` for Python floats.

    Returns
    -------
    numpy.ndarray or float
        ``(ta √(10 vel) + tr) / (1 + √(10 vel))`` [°C].

    Examples
    --------
    >>> operative_temperature(np.array([20.0]), np.array([24.0]), np.array([0.1])).tolist()
    [22.0]
    """
    weight = xp.sqrt(10.0 * vel)
    return (ta * weight + tr) / (1.0 + weight)


def pmv_iso_7730(ta: Any, tr: Any, vr: Any, rh: Any, met: Any, clo: Any, xp: Any = np) -> Any:
    """Predicted mean vote after ISO 7730 (Annex D), without applicability limits.

    Parameters
    ----------
    ta, tr
        Air and mean radiant temperature [°C].
    vr
        Relative air speed [m/s] (see :func:`relative_air_speed`).
    rh
        Relative humidity [%].
    met
        Metabolic rate [met]; no external work.
    clo
        Dynamic clothing insulation [clo] (see :func:`dynamic_clothing`).
    xp
        ``numpy`` for arrays, :class:`Floats` for Python floats.

    Returns
    -------
    numpy.ndarray or float
        PMV [-]; NaN where an input is missing or the iteration does not converge.

    Examples
    --------
    The first row of ISO 7730's Table D.1 (PMV -0.75, PPD 17 %):

    >>> pmv = pmv_iso_7730(*(np.array([x]) for x in (22.0, 22.0, 0.1, 60.0, 1.2, 0.5)))
    >>> round(float(pmv[0]), 2), round(float(ppd_from_pmv(pmv)[0]))
    (-0.75, 17)
    """
    return _pmv(ta, tr, vr, met, clo, vapour_pressure(ta, rh, xp), xp)


def vapour_pressure(ta: Any, rh: Any, xp: Any = np) -> Any:
    """Water vapour partial pressure of the air, as ISO 7730 (Annex D) computes it [Pa].

    Parameters
    ----------
    ta
        Air temperature [°C].
    rh
        Relative humidity [%].
    xp
        ``numpy`` for arrays, :class:`Floats` for Python floats.

    Returns
    -------
    numpy.ndarray or float
        ``rh × 10 × exp(16.6536 - 4030.183 / (ta + 235))`` [Pa].

    Examples
    --------
    >>> round(vapour_pressure(22.0, 60.0, Floats))
    1586
    """
    return rh * 10.0 * xp.exp(16.6536 - 4030.183 / (ta + 235.0))


def _pmv(ta: Any, tr: Any, vr: Any, met: Any, clo: Any, pa: Any, xp: Any) -> Any:
    """:func:`pmv_iso_7730` given the vapour pressure ``pa`` [Pa] instead of the humidity."""
    icl = 0.155 * clo  # clothing insulation [m² K/W]
    m = met * MET_W_M2  # metabolic rate = internal heat production [W/m²]
    f_cl = xp.where(icl <= 0.078, 1.0 + 1.29 * icl, 1.05 + 0.645 * icl)
    hcf = 12.1 * xp.sqrt(vr)  # forced convection [W/(m² K)]
    taa, tra = ta + 273.0, tr + 273.0
    t_cla = taa + (35.5 - ta) / (3.5 * (6.45 * icl + 0.1))  # first guess [K]
    p1 = icl * f_cl
    p2, p3, p4 = p1 * 3.96, p1 * 100.0, p1 * taa
    p5 = (308.7 - 0.028 * m) + p2 * (tra / 100.0) ** 4
    solve = _surface_floats if xp is Floats else _surface_arrays
    xn, hc = solve(t_cla / 100.0, t_cla / 50.0, hcf, taa, p2, p3, p4, p5)
    tcl = 100.0 * xn - 273.0
    hl1 = 3.05e-3 * (5733.0 - 6.99 * m - pa)  # skin diffusion
    hl2 = xp.where(m > MET_W_M2, 0.42 * (m - MET_W_M2), 0.0)  # sweating
    hl3 = 1.7e-5 * m * (5867.0 - pa)  # latent respiration
    hl4 = 0.0014 * m * (34.0 - ta)  # dry respiration
    hl5 = 3.96 * f_cl * (xn**4 - (tra / 100.0) ** 4)  # radiation
    hl6 = f_cl * hc * (tcl - ta)  # convection
    ts = 0.303 * xp.exp(-0.036 * m) + 0.028
    return ts * (m - hl1 - hl2 - hl3 - hl4 - hl5 - hl6)


def _surface_floats(
    xn: float, xf: float, hcf: float, taa: float, p2: float, p3: float, p4: float, p5: float
) -> tuple[float, float]:
    """Solve ISO 7730's heat balance for the clothing surface temperature [K / 100] by damped
    fixed-point iteration; also return the convective heat transfer coefficient [W/(m² K)].
    """
    hc = hcf
    for _ in range(_MAX_ITERATIONS):
        if not abs(xn - xf) > _EPS:
            return xn, hc
        xf = (xf + xn) / 2.0
        hc = max(2.38 * abs(100.0 * xf - taa) ** 0.25, hcf)
        xn = (p5 + p4 * hc - p2 * xf**4) / (100.0 + p3 * hc)
    return (math.nan if abs(xn - xf) > _EPS else xn), hc


def _surface_arrays(
    xn: FloatArray,
    xf: FloatArray,
    hcf: FloatArray,
    taa: FloatArray,
    p2: FloatArray,
    p3: FloatArray,
    p4: FloatArray,
    p5: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """:func:`_surface_floats` on arrays: each row iterates exactly as often as it would alone."""
    xn, hc = xn.copy(), hcf.copy()
    rows = np.flatnonzero(np.abs(xn - xf) > _EPS)
    for _ in range(_MAX_ITERATIONS):
        if rows.size == 0:
            break
        x_old = (xf[rows] + xn[rows]) / 2.0
        h = np.maximum(2.38 * np.abs(100.0 * x_old - taa[rows]) ** 0.25, hcf[rows])
        x_new = (p5[rows] + p4[rows] * h - p2[rows] * x_old**4) / (100.0 + p3[rows] * h)
        xf[rows], xn[rows], hc[rows] = x_old, x_new, h
        rows = rows[np.abs(x_new - x_old) > _EPS]
    xn[rows] = np.nan  # did not converge
    return xn, hc


def ppd_from_pmv(pmv: Any, xp: Any = np) -> Any:
    """Predicted percentage dissatisfied after ISO 7730.

    Parameters
    ----------
    pmv
        Predicted mean vote [-].
    xp
        ``numpy`` for arrays, :class:`Floats` for Python floats.

    Returns
    -------
    numpy.ndarray or float
        PPD [%], 5 % at PMV 0.

    Examples
    --------
    >>> ppd_from_pmv(np.array([0.0, 1.0])).round(1).tolist()
    [5.0, 26.1]
    """
    return 100.0 - 95.0 * xp.exp(-0.03353 * pmv**4 - 0.2179 * pmv**2)


def pmv_ppd_limited(
    ta: Any, tr: Any, vel: Any, rh: Any, met: Any, clo: Any, xp: Any = np
) -> tuple[Any, Any]:
    """PMV and PPD after ISO 7730 from the measured air speed and the static clothing, within
    ISO 7730's applicability, as pythermalcomfort's ``pmv_ppd_iso(limit_inputs=True)`` gives
    them after ``v_relative`` and ``clo_dynamic_ashrae``.

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
    xp
        ``numpy`` for arrays, :class:`Floats` for Python floats.

    Returns
    -------
    tuple
        ``(pmv [-], ppd [%])``, NaN outside :data:`ISO_7730_LIMITS` (air and radiant
        temperature, relative air speed, metabolic rate, dynamic clothing, vapour pressure and
        PMV itself).
    """
    vr, clo_dynamic = relative_air_speed(vel, met, xp), dynamic_clothing(clo, met, xp)
    pa = vapour_pressure(ta, rh, xp)
    pmv = _pmv(ta, tr, vr, met, clo_dynamic, pa, xp)
    within = True
    for value, (low, high) in zip(
        (ta, tr, vr, met, clo_dynamic, pa, pmv), ISO_7730_LIMITS.values(), strict=True
    ):
        within = within & (value >= low) & (value <= high)
    return xp.where(within, pmv, math.nan), xp.where(within, ppd_from_pmv(pmv, xp), math.nan)


def adaptive_comfort_temperature(t_running_mean: Any, xp: Any = np) -> Any:
    """ASHRAE 55 adaptive comfort temperature [°C], NaN outside 10-33.5 °C running mean.

    Parameters
    ----------
    t_running_mean
        Prevailing (running-mean) outdoor temperature [°C].
    xp
        ``numpy`` for arrays, :class:`Floats` for Python floats.

    Returns
    -------
    numpy.ndarray or float
        ``17.8 + 0.31 * t_running_mean`` [°C].

    Examples
    --------
    >>> adaptive_comfort_temperature(np.array([20.0, 5.0])).round(1).tolist()
    [24.0, nan]
    """
    low, high = ADAPTIVE_RANGE
    valid = (t_running_mean >= low) & (t_running_mean <= high)
    return xp.where(valid, ADAPTIVE_INTERCEPT + ADAPTIVE_SLOPE * t_running_mean, math.nan)
