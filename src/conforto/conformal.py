"""Conformal prediction sets: the classes an occupant may vote, at a chosen confidence level.

A model's ``conformal.json`` holds, for the non-conformity score ``1 − p(class)``, the conformal
p-value of every score on a fine grid, computed at training from the building-grouped
out-of-fold predictions (:mod:`conforto.coverage`). A class belongs to the set at level ``L``
when its score's p-value exceeds ``1 − L``; the class the decision rule picks is always in
it, so no set is empty. Scores fall between grid points: each is read at the grid point below
it, whose p-value is as large or larger (sets can only grow, coverage only rise).

With ``mondrian`` the p-values are class-conditional (one curve per class): each class is
covered at the level, not only all votes together.

This module needs only NumPy: the service applies stored calibrations with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from conforto.target import CLASS_NAMES

#: The artifact file (optional: models trained before it have no sets).
CONFORMAL = "conformal.json"
#: Levels a caller may ask for, and the one they get unless they ask.
MIN_LEVEL, MAX_LEVEL, DEFAULT_LEVEL = 0.5, 0.99, 0.9
#: Points of the score grid (0 to 1).
GRID = 2001

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def score_grid() -> FloatArray:
    """The scores the p-values are stored at: ``GRID`` points from 0 to 1."""
    return np.linspace(0.0, 1.0, GRID)


@dataclass(frozen=True)
class ConformalSets:
    """A stored calibration: p-values of non-conformity scores ``1 − p`` on the score grid.

    Attributes
    ----------
    pvalues
        ``(1, GRID)``, or ``(3, GRID)`` one row per class when ``mondrian``.
    mondrian
        Class-conditional calibration.
    rows
        Calibration rows (out-of-fold votes).
    """

    pvalues: FloatArray
    mondrian: bool
    rows: int

    def __post_init__(self) -> None:
        expected = (len(CLASS_NAMES) if self.mondrian else 1, GRID)
        if self.pvalues.shape != expected:
            raise ValueError(f"p-values of shape {self.pvalues.shape}, expected {expected}")

    def member(self, proba: FloatArray, level: FloatArray | float) -> BoolArray:
        """Which classes belong to each row's set, by the p-values alone.

        Parameters
        ----------
        proba
            Class probabilities, rows × 3.
        level
            Confidence level per row (or one for all), :data:`MIN_LEVEL` to :data:`MAX_LEVEL`.

        Returns
        -------
        numpy.ndarray
            Booleans, rows × 3.
        """
        index = np.floor((1.0 - np.clip(proba, 0.0, 1.0)) * (GRID - 1)).astype(np.intp)
        classes = np.arange(proba.shape[1]) if self.mondrian else np.zeros(proba.shape[1], int)
        pvalues = self.pvalues[classes[None, :], index]
        threshold = 1.0 - np.broadcast_to(np.asarray(level, dtype=np.float64), len(proba))
        return np.asarray(pvalues > threshold[:, None])

    def sets(
        self, proba: FloatArray, level: FloatArray | float, decision: npt.NDArray[np.int64]
    ) -> BoolArray:
        """The prediction sets: :meth:`member` plus each row's decided class.

        Examples
        --------
        >>> calm = ConformalSets(np.linspace(1.0, 0.0, GRID)[None, :], mondrian=False, rows=100)
        >>> proba = np.array([[0.05, 0.75, 0.20], [0.40, 0.45, 0.15]])
        >>> calm.sets(proba, 0.7, np.array([1, 1])).tolist()
        [[False, True, False], [True, True, False]]
        """
        out = self.member(proba, level)
        out[np.arange(len(out)), decision] = True
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``conformal.json``)."""
        return {
            "score": "1 - p(class)",
            "grid": GRID,
            "mondrian": self.mondrian,
            "rows": self.rows,
            "pvalues": np.round(self.pvalues, 7).tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConformalSets:
        """Read :meth:`to_dict`'s form.

        Raises
        ------
        ValueError
            When the grid or the shape is not this version's.
        """
        if data.get("grid") != GRID:
            grid = data.get("grid")
            raise ValueError(f"a score grid of {grid} points; this conforto reads {GRID}")
        return cls(
            np.asarray(data["pvalues"], dtype=np.float64), bool(data["mondrian"]), int(data["rows"])
        )


def check_level(level: float) -> float:
    """``level`` when it is one a caller may ask for.

    Raises
    ------
    ValueError
        When it is outside :data:`MIN_LEVEL` to :data:`MAX_LEVEL`, saying so.
    """
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise ValueError(
            f"coverage {level:g} is outside {MIN_LEVEL:g} to {MAX_LEVEL:g}: choose a confidence "
            "level in that range, e.g. 0.9 for sets that hold 9 votes in 10"
        )
    return level


def set_labels(sets: BoolArray) -> list[list[str]]:
    """Each row's set as class names, in the order cool, neutral, warm.

    Examples
    --------
    >>> set_labels(np.array([[True, True, False], [False, False, True]]))
    [['cool', 'neutral'], ['warm']]
    """
    return [[CLASS_NAMES[k] for k in np.flatnonzero(row)] for row in sets]


def joined(sets: BoolArray) -> list[str]:
    """Each row's set as one text, classes joined by ``|`` (``cool|neutral``)."""
    return ["|".join(labels) for labels in set_labels(sets)]
