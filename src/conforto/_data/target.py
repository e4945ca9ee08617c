"""Targets: the 3-class thermal sensation and the rounded 7-point ASHRAE vote."""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import numpy.typing as npt


class ThermalClass(StrEnum):
    """Three-class thermal sensation: ``cool`` < -0.5 <= ``neutral`` <= 0.5 < ``warm``."""

    COOL = "cool"
    NEUTRAL = "neutral"
    WARM = "warm"


#: Class labels in the order of class indices (0, 1, 2).
CLASSES: tuple[ThermalClass, ...] = (ThermalClass.COOL, ThermalClass.NEUTRAL, ThermalClass.WARM)
#: Their names, in the same order (``cool``, ``neutral``, ``warm``).
CLASS_NAMES: tuple[str, ...] = tuple(c.value for c in CLASSES)

#: Limits of the neutral band on the 7-point scale [vote].
NEUTRAL_BAND: tuple[float, float] = (-0.5, 0.5)


def sensation_class(vote: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Map thermal sensation votes to class indices 0 (cool), 1 (neutral), 2 (warm).

    Parameters
    ----------
    vote
        ASHRAE 7-point votes [-3, +3]; decimals allowed, NaN for no vote.

    Returns
    -------
    numpy.ndarray
        Float array of class indices (index into :data:`CLASSES`), NaN where the vote is NaN.

    Examples
    --------
    >>> sensation_class([-0.6, -0.5, 0.5, 0.51, float("nan")]).tolist()
    [0.0, 1.0, 1.0, 2.0, nan]
    """
    v = np.asarray(vote, dtype=np.float64)
    low, high = NEUTRAL_BAND
    out = np.where(v < low, 0.0, np.where(v > high, 2.0, 1.0))
    return np.where(np.isnan(v), np.nan, out)


def sensation_vote(vote: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Round thermal sensation votes to the 7-point scale, halves away from zero.

    Parameters
    ----------
    vote
        ASHRAE votes [-3, +3]; decimals allowed.

    Returns
    -------
    numpy.ndarray
        Integers -3..+3 as floats, NaN kept.

    Examples
    --------
    >>> sensation_vote([-2.5, -0.4, 0.5, 2.6]).tolist()
    [-3.0, -0.0, 1.0, 3.0]
    """
    v = np.asarray(vote, dtype=np.float64)
    rounded: npt.NDArray[np.float64] = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5), -3.0, 3.0)
    return rounded
