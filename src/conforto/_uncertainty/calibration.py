"""Calibrating prediction sets and measuring how often they hold the vote.

Calibration is split conformal (crepes' :class:`~crepes.ConformalClassifier`) on the
building-grouped out-of-fold predictions, with the non-conformity score ``1 − p(true class)``:
the folds never saw the buildings they scored, so the sets are calibrated for buildings the
model has not seen. Coverage is measured the same way (cross-conformal): each fold's sets come
from a calibration on the other folds. On other labelled data (a holdout) the model's stored
calibration is applied as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

import numpy as np
import numpy.typing as npt
import pandas as pd

from conforto._data.target import CLASS_NAMES
from conforto._scoring import oof
from conforto._scoring.scores import N_CLASSES
from conforto._uncertainty.sets import GRID, GROUPINGS, BoolArray, ConformalSets, score_grid
from conforto.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Sequence

#: Levels of the report, the model card and the README's table.
REPORT_LEVELS = (0.8, 0.9, 0.95)
#: Levels of the coverage curve (report plot).
CURVE_LEVELS = tuple(np.round(np.arange(0.5, 0.991, 0.01), 2).tolist())
#: Slices whose coverage is reported.
#: Coverage may miss the nominal level by this much overall, and slices with at least
#: ``MIN_SLICE_ROWS`` rows by ``SLICE_TOLERANCE``.
TOLERANCE, SLICE_TOLERANCE = 0.015, 0.05
#: By climate, a climate gets its own calibration with at least this many buildings and votes.
CLIMATE_MIN_BUILDINGS, CLIMATE_MIN_ROWS = 3, 300

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _curves(scores: FloatArray, bins: IntArray | None = None, count: int = 1) -> list[FloatArray]:
    """Conformal p-values on the score grid (crepes): one curve, or one per bin 0 … count − 1."""
    from crepes import ConformalClassifier

    fitted = ConformalClassifier().fit(scores, bins=bins)
    grid = score_grid()[:, None]
    each = [None] if bins is None else [np.full(GRID, k) for k in range(count)]
    return [fitted.predict_p(grid, bins=b, smoothing=False)[:, 0] for b in each]


def calibrate(
    proba: FloatArray,
    y: IntArray,
    *,
    by: str = "all",
    climates: Sequence[str | None] | None = None,
    buildings: npt.ArrayLike | None = None,
) -> ConformalSets:
    """Conformal p-values of the scores ``1 − p(true class)`` of labelled predictions.

    Parameters
    ----------
    proba
        Out-of-fold class probabilities, rows × 3.
    y
        True classes.
    by
        ``all``, ``class`` or ``climate`` (see :mod:`conforto._uncertainty.sets`).
    climates, buildings
        Each row's climate (normalised, ``None`` when unknown) and building, by ``climate``: a
        climate with at least :data:`CLIMATE_MIN_BUILDINGS` buildings and
        :data:`CLIMATE_MIN_ROWS` votes gets its own curve.

    Returns
    -------
    ConformalSets
        The calibration, as stored in ``conformal.json``.

    Raises
    ------
    DataError
        When there is nothing to calibrate on, a class has no vote (by ``class``) or the rows'
        climates are unknown (by ``climate``).
    """
    if by not in GROUPINGS:
        raise DataError(f"prediction sets grouped by {by!r}: choose one of {', '.join(GROUPINGS)}")
    counts = np.bincount(y, minlength=N_CLASSES)
    if len(y) == 0:
        raise DataError("cannot calibrate prediction sets: no labelled predictions")
    scores = 1.0 - proba[np.arange(len(y)), y]
    if by == "class":
        if (counts == 0).any():
            missing = ", ".join(CLASS_NAMES[k] for k in np.flatnonzero(counts == 0))
            raise DataError(f"cannot calibrate prediction sets per class: no {missing} vote")
        return ConformalSets(np.vstack(_curves(scores, y, N_CLASSES)), by, len(y))
    curves, own = _curves(scores), tuple[str, ...]()
    if by == "climate":
        if climates is None or buildings is None:
            raise DataError("prediction sets by climate need each vote's climate and building")
        frame = pd.DataFrame({"climate": climates, "building": buildings}).dropna()
        size = frame.groupby("climate")["building"].agg(["size", "nunique"])
        enough = (size["nunique"] >= CLIMATE_MIN_BUILDINGS) & (size["size"] >= CLIMATE_MIN_ROWS)
        own = tuple(sorted(str(name) for name in size.index[enough]))
        index = {name: k for k, name in enumerate(own)}
        code = np.array([index.get(c, -1) if c else -1 for c in climates], dtype=np.intp)
        inside = code >= 0
        if own:
            curves += _curves(scores[inside], code[inside], len(own))
    return ConformalSets(np.vstack(curves), by, len(y), own)


def _climates(pred: pd.DataFrame) -> list[str | None] | None:
    """The frame's climates (``None`` where unknown), or ``None`` without the column."""
    if "climate" not in pred.columns:
        return None
    return [c if isinstance(c, str) else None for c in pred["climate"].tolist()]


def calibrate_frame(pred: pd.DataFrame, *, by: str = "all") -> ConformalSets:
    """:func:`calibrate` on a predictions frame (:mod:`conforto._scoring.oof`), with its
    climates and
    buildings.
    """
    return calibrate(
        oof.probabilities(pred),
        oof.labels(pred)[0],
        by=by,
        climates=_climates(pred) or [None] * len(pred),
        buildings=pred["building_id"].to_numpy() if "building_id" in pred.columns else None,
    )


def cross_conformal_sets(
    pred: pd.DataFrame,
    levels: Sequence[float],
    *,
    by: str = "all",
    answers: tuple[FloatArray, IntArray] | None = None,
) -> dict[float, BoolArray]:
    """Sets of out-of-fold predictions, each fold's from a calibration on the other folds.

    Parameters
    ----------
    pred
        Predictions frame (:mod:`conforto._scoring.oof`) with at least two folds.
    levels
        Confidence levels.
    by
        How the calibration groups the votes (by ``climate`` reads the ``climate`` column).
    answers
        Other answers of the same rows to build sets of (probabilities, decisions), each fold's
        still from the calibration on the other folds' model answers, as a model's stored
        calibration treats answers adapted to a site. Default: the frame's own.

    Returns
    -------
    dict
        Level → sets (rows × 3).

    Raises
    ------
    DataError
        When the frame has fewer than two folds.
    """
    proba, decision = answers or (oof.probabilities(pred), oof.labels(pred)[1])
    out = {level: np.zeros(proba.shape, dtype=bool) for level in levels}
    for test, others in oof.held_out(pred, "cross-conformal coverage"):
        calibration = calibrate_frame(others, by=by)
        climates = _climates(pred[test])
        for level in levels:
            out[level][test] = calibration.sets(proba[test], level, decision[test], climates)
    return out


def stored_sets(
    pred: pd.DataFrame, calibration: ConformalSets, levels: Sequence[float]
) -> dict[float, BoolArray]:
    """Sets of a predictions frame by a model's stored calibration."""
    proba, decision, climates = (
        oof.probabilities(pred),
        oof.labels(pred)[1],
        _climates(pred),
    )
    return {level: calibration.sets(proba, level, decision, climates) for level in levels}


class Measured(TypedDict):
    """Coverage and mean set size (classes) at each nominal level, in order."""

    rows: int
    coverage: list[float]
    mean_size: list[float]


class Curve(Measured):
    """:class:`Measured` at the curve's levels."""

    levels: list[float]


class Judged(Measured):
    """:class:`Measured`, with whether each coverage is inside the tolerance (``None``: not
    judged, too few rows).
    """

    within: list[bool] | None


class Group(Judged):
    """:class:`Judged` for one class or slice value."""

    value: str


class CoverageReport(TypedDict):
    """Empirical coverage and mean set size, overall, per class and per slice."""

    method: str
    by: str
    levels: list[float]
    overall: Judged
    curve: Curve
    classes: list[Group]
    #: slice column → its values, largest first
    slices: dict[str, list[Group]]


class Miss(TypedDict):
    """A judged slice whose coverage misses a level by more than the tolerance."""

    slice: str
    value: str
    rows: int
    level: float
    coverage: float


def _measure(y: IntArray, sets: dict[float, BoolArray], levels: Sequence[float]) -> Measured:
    """Coverage and mean set size at each level."""
    rows = np.arange(len(y))
    coverage = [float(sets[level][rows, y].mean()) for level in levels]
    return {
        "rows": len(y),
        "coverage": coverage,
        "mean_size": [float(sets[level].sum(axis=1).mean()) for level in levels],
    }


def coverage_report(
    pred: pd.DataFrame,
    *,
    calibration: ConformalSets | None = None,
    by: str = "all",
    levels: Sequence[float] = REPORT_LEVELS,
) -> CoverageReport:
    """Empirical coverage and mean set size, overall, per class and per slice.

    Parameters
    ----------
    pred
        Predictions frame (:mod:`conforto._scoring.oof`).
    calibration
        A model's stored calibration; ``None``: cross-conformal over ``pred``'s folds.
    by
        How the calibration groups the votes (cross-conformal only; a stored one says its own).
    levels
        Nominal levels.

    Returns
    -------
    CoverageReport
        Overall judged with :data:`TOLERANCE`; slices of at least
        :data:`conforto._scoring.oof.MIN_SLICE_ROWS` rows with :data:`SLICE_TOLERANCE`;
        the curve at :data:`CURVE_LEVELS`.
    """
    every = sorted({*levels, *CURVE_LEVELS})
    if calibration is None:
        sets = cross_conformal_sets(pred, every, by=by)
        method = "cross-conformal over the building-grouped folds"
    else:
        sets, by = stored_sets(pred, calibration, every), calibration.by
        method = f"the model's calibration ({calibration.rows} out-of-fold votes)"
    y = oof.labels(pred)[0]

    def measured(index: npt.NDArray[np.intp], tolerance: float | None) -> Judged:
        entry = _measure(y[index], {lv: s[index] for lv, s in sets.items()}, levels)
        within = (
            None
            if tolerance is None
            else [abs(c - lv) <= tolerance for c, lv in zip(entry["coverage"], levels, strict=True)]
        )
        return {**entry, "within": within}

    def group(value: str, index: npt.NDArray[np.intp], tolerance: float | None) -> Group:
        return {"value": value, **measured(index, tolerance)}

    def judged(rows: int) -> float | None:
        return SLICE_TOLERANCE if rows >= oof.MIN_SLICE_ROWS else None

    slices = {
        column: sorted(
            (group(value, i, judged(i.size)) for value, i in groups.items()),
            key=lambda e: -e["rows"],
        )
        for column, groups in oof.slices(pred, oof.JUDGED_SLICES).items()
    }
    return {
        "method": method,
        "by": by,
        "levels": list(levels),
        "overall": measured(np.arange(len(y)), TOLERANCE),
        "curve": {"levels": list(CURVE_LEVELS), **_measure(y, sets, CURVE_LEVELS)},
        "classes": [
            group(name, np.flatnonzero(y == k), None) for k, name in enumerate(CLASS_NAMES)
        ],
        "slices": slices,
    }


def coverage_misses(report: CoverageReport) -> list[Miss]:
    """The judged slices whose coverage misses a level by more than the tolerance."""
    return [
        {"slice": column, "value": e["value"], "rows": e["rows"], "level": level, "coverage": c}
        for column, entries in report["slices"].items()
        for e in entries
        if e["within"] is not None
        for level, c, ok in zip(report["levels"], e["coverage"], e["within"], strict=True)
        if not ok
    ]
