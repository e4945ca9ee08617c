"""Conformal prediction sets: the classes an occupant may vote, at a chosen confidence level.

A model's ``conformal.json`` holds, for the non-conformity score ``1 − p(class)``, the conformal
p-value of every score on a fine grid, computed at training from the building-grouped
out-of-fold predictions (:mod:`conforto._uncertainty.calibration`). A class belongs to the set at
level ``L`` when its score's p-value exceeds ``1 − L``; the class the decision rule picks is always
in it, so no set is empty. Scores fall between grid points: each is read at the grid point below
it, whose p-value is as large or larger (sets can only grow, coverage only rise).

A calibration groups the votes one of three ways (``by``): ``all`` together (the default);
per ``class`` (Mondrian: one curve per class, each class covered at the level); or per
``climate`` (one curve for each climate with enough buildings, read for observations in it, and
one for all votes, read for the others and for observations without a climate). Measured
cross-conformally on the out-of-fold predictions, per-climate curves cover each climate more
evenly; on buildings the model never saw they do no better than one curve
(``bench/calibration.py --unseen``), so one curve is the default.

This module needs only NumPy: the service applies stored calibrations with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from conforto._data.target import CLASS_NAMES
from conforto._settings import MAX_LEVEL, MIN_LEVEL

if TYPE_CHECKING:
    from collections.abc import Sequence

#: The artifact file.
CONFORMAL = "conformal.json"
#: Levels a caller may ask for, and the one they get unless they ask.
#: Points of the score grid (0 to 1).
GRID = 2001

#: How a calibration groups the votes.
GROUPINGS = ("all", "class", "climate")
#: By ``class``, each column reads its own curve.
_CLASSES = np.arange(len(CLASS_NAMES))[None, :]
#: A set as a number (cool 1, neutral 2, warm 4) and the class names of each number.
_BITS = 1 << np.arange(len(CLASS_NAMES))
_NAMES = [tuple(n for k, n in enumerate(CLASS_NAMES) if code >> k & 1) for code in range(8)]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]


def score_grid() -> FloatArray:
    """The scores the p-values are stored at: ``GRID`` points from 0 to 1."""
    return np.linspace(0.0, 1.0, GRID)


@dataclass(frozen=True)
class ConformalSets:
    """A stored calibration: p-values of non-conformity scores ``1 − p`` on the score grid.

    Attributes
    ----------
    pvalues
        One curve of ``GRID`` p-values per row: ``(1, GRID)`` by ``all``; ``(3, GRID)`` by
        ``class``; by ``climate``, all votes' curve then one per climate of ``climates``.
    by
        The grouping, one of :data:`GROUPINGS`.
    rows
        Calibration rows (out-of-fold votes).
    climates
        The climates with their own curve (by ``climate``).
    """

    pvalues: FloatArray
    by: str
    rows: int
    climates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Refuse a grouping or curves of the wrong shape."""
        curves = len(CLASS_NAMES) if self.by == "class" else 1 + len(self.climates)
        if self.by not in GROUPINGS or self.pvalues.shape != (curves, GRID):
            raise ValueError(
                f"p-values of shape {self.pvalues.shape} grouped by {self.by!r}: expected "
                f"{(curves, GRID)} grouped by one of {GROUPINGS}"
            )

    def curve_of(self, climates: Sequence[str | None] | None, rows: int) -> IntArray:
        """The curve each observation reads (by ``climate``: its climate's, when it has one;
        else all votes', 0).

        Examples
        --------
        >>> sets = ConformalSets(np.ones((2, GRID)), "climate", 100, ("tropical savanna",))
        >>> sets.curve_of(["tropical savanna", None, "tundra"], 3).tolist()
        [1, 0, 0]
        """
        if self.by != "climate" or climates is None:
            return np.zeros(rows, dtype=np.intp)
        index = self._curve_index
        return np.array([index.get(c, 0) if c else 0 for c in climates], dtype=np.intp)

    @cached_property
    def _curve_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.climates, start=1)}

    def member(
        self,
        proba: FloatArray,
        level: FloatArray | float,
        climates: Sequence[str | None] | None = None,
    ) -> BoolArray:
        """Which classes belong to each row's set, by the p-values alone.

        Parameters
        ----------
        proba
            Class probabilities (0 to 1), rows × 3.
        level
            Confidence level per row (or one for all), :data:`MIN_LEVEL` to :data:`MAX_LEVEL`.
        climates
            Each row's climate (normalised; ``None`` when unknown), read by ``climate``.

        Returns
        -------
        numpy.ndarray
            Booleans, rows × 3.
        """
        index = ((1.0 - proba) * (GRID - 1)).astype(np.intp)  # truncation: the point below
        by_class = self.by == "class"
        curves = _CLASSES if by_class else self.curve_of(climates, len(proba))[:, None]
        threshold = 1.0 - np.asarray(level, dtype=np.float64).reshape(-1, 1)
        return np.asarray(self.pvalues[curves, index] > threshold)

    def sets(
        self,
        proba: FloatArray,
        level: FloatArray | float,
        decision: npt.NDArray[np.int64],
        climates: Sequence[str | None] | None = None,
    ) -> BoolArray:
        """The prediction sets: :meth:`member` plus each row's decided class.

        Examples
        --------
        >>> calm = ConformalSets(np.linspace(1.0, 0.0, GRID)[None, :], by="all", rows=100)
        >>> proba = np.array([[0.05, 0.75, 0.20], [0.40, 0.45, 0.15]])
        >>> calm.sets(proba, 0.7, np.array([1, 1])).tolist()
        [[False, True, False], [True, True, False]]
        """
        out = self.member(proba, level, climates)
        out[np.arange(len(out)), decision] = True
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``conformal.json``)."""
        return {
            "score": "1 - p(class)",
            "grid": GRID,
            "by": self.by,
            "climates": list(self.climates),
            "rows": self.rows,
            # rounded up: a stored p-value is never below the computed one (sets only grow)
            "pvalues": (np.ceil(self.pvalues * 1e7) / 1e7).tolist(),
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
            np.asarray(data["pvalues"], dtype=np.float64),
            str(data["by"]),
            int(data["rows"]),
            tuple(data["climates"]),
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


def set_labels(sets: BoolArray) -> list[tuple[str, ...]]:
    """Each row's set as class names, in the order cool, neutral, warm.

    Examples
    --------
    >>> set_labels(np.array([[True, True, False], [False, False, True]]))
    [('cool', 'neutral'), ('warm',)]
    """
    return [_NAMES[code] for code in (sets @ _BITS).tolist()]


def sets_as_text(sets: BoolArray) -> list[str]:
    """Each row's set as one text, classes joined by ``|`` (``cool|neutral``)."""
    return ["|".join(labels) for labels in set_labels(sets)]
