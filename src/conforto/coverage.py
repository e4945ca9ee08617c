"""Calibrating prediction sets and measuring how often they hold the vote.

Calibration is split conformal (crepes' :class:`~crepes.ConformalClassifier`) on the
building-grouped out-of-fold predictions, with the non-conformity score ``1 − p(true class)``:
the folds never saw the buildings they scored, so the sets are calibrated for buildings the
model has not seen. Coverage is measured the same way (cross-conformal): each fold's sets come
from a calibration on the other folds. On other labelled data (a holdout) the model's stored
calibration is applied as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from conforto import oof
from conforto.conformal import GRID, BoolArray, ConformalSets, score_grid
from conforto.errors import DataError
from conforto.metrics import N_CLASSES, slice_positions
from conforto.target import CLASS_NAMES

#: Levels of the report, the model card and the README's table.
REPORT_LEVELS = (0.8, 0.9, 0.95)
#: Levels of the coverage curve (report plot).
CURVE_LEVELS = tuple(np.round(np.arange(0.5, 0.991, 0.01), 2).tolist())
#: Slices whose coverage is reported.
COVERAGE_SLICES = ("climate", "cooling_type", "season")
#: Coverage may miss the nominal level by this much overall, and slices with at least
#: ``SLICE_MIN_ROWS`` rows by ``SLICE_TOLERANCE``.
TOLERANCE, SLICE_TOLERANCE, SLICE_MIN_ROWS = 0.015, 0.05, 1000

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def calibrate(proba: FloatArray, y: IntArray, *, mondrian: bool = False) -> ConformalSets:
    """Conformal p-values of the scores ``1 − p(true class)`` of labelled predictions.

    Parameters
    ----------
    proba
        Out-of-fold class probabilities, rows × 3.
    y
        True classes.
    mondrian
        One calibration per class (class-conditional coverage).

    Returns
    -------
    ConformalSets
        The calibration, as stored in ``conformal.json``.

    Raises
    ------
    DataError
        When there is nothing to calibrate on, or ``mondrian`` and a class has no vote.
    """
    from crepes import ConformalClassifier

    counts = np.bincount(y, minlength=N_CLASSES)
    if len(y) == 0 or (mondrian and (counts == 0).any()):
        missing = [CLASS_NAMES[k] for k in np.flatnonzero(counts == 0)]
        raise DataError(
            "cannot calibrate prediction sets: "
            + (
                f"no {', '.join(missing)} vote for a class-conditional calibration"
                if len(y)
                else "no labelled predictions"
            )
        )
    scores = 1.0 - proba[np.arange(len(y)), y]
    calibration = ConformalClassifier().fit(scores, bins=y if mondrian else None)
    grid = score_grid()[:, None]
    curves = [
        calibration.predict_p(grid, bins=np.full(GRID, k) if mondrian else None, smoothing=False)
        for k in (range(N_CLASSES) if mondrian else [0])
    ]
    return ConformalSets(np.hstack(curves).T, mondrian, len(y))


def cross_conformal_sets(
    pred: pd.DataFrame, levels: Sequence[float], *, mondrian: bool = False
) -> dict[float, BoolArray]:
    """Sets of out-of-fold predictions, each fold's from a calibration on the other folds.

    Parameters
    ----------
    pred
        Predictions frame (:mod:`conforto.oof`) with at least two folds.
    levels
        Confidence levels.

    Returns
    -------
    dict
        Level → sets (rows × 3).

    Raises
    ------
    DataError
        When the frame has fewer than two folds.
    """
    fold = pred["fold"].to_numpy()
    folds = np.unique(fold)
    if folds.size < 2 or (folds < 0).any():
        raise DataError("cross-conformal coverage needs out-of-fold predictions of ≥ 2 folds")
    y, decision = oof.labels(pred)
    proba = oof.probabilities(pred)
    out = {level: np.zeros(proba.shape, dtype=bool) for level in levels}
    for k in folds:
        test = fold == k
        calibration = calibrate(proba[~test], y[~test], mondrian=mondrian)
        for level in levels:
            out[level][test] = calibration.sets(proba[test], level, decision[test])
    return out


def stored_sets(
    pred: pd.DataFrame, calibration: ConformalSets, levels: Sequence[float]
) -> dict[float, BoolArray]:
    """Sets of a predictions frame by a model's stored calibration."""
    proba, decision = oof.probabilities(pred), oof.labels(pred)[1]
    return {level: calibration.sets(proba, level, decision) for level in levels}


def _measure(y: IntArray, sets: dict[float, BoolArray], levels: Sequence[float]) -> dict[str, Any]:
    """Coverage and mean set size at each level; ``within``: coverage inside the tolerance."""
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
    mondrian: bool = False,
    levels: Sequence[float] = REPORT_LEVELS,
) -> dict[str, Any]:
    """Empirical coverage and mean set size, overall, per class and per slice.

    Parameters
    ----------
    pred
        Predictions frame (:mod:`conforto.oof`).
    calibration
        A model's stored calibration; ``None``: cross-conformal over ``pred``'s folds.
    mondrian
        Class-conditional calibration (cross-conformal only; a stored one says its own).
    levels
        Nominal levels.

    Returns
    -------
    dict
        ``method``, ``mondrian``, ``levels``; ``overall`` (``rows``, ``coverage`` and
        ``mean_size`` per level, ``within`` the tolerance); ``curve`` (the same at
        :data:`CURVE_LEVELS`); ``classes``; ``slices`` (column → entries with ``value``,
        ``within`` for slices of at least :data:`SLICE_MIN_ROWS` rows, else ``None``).
    """
    every = sorted({*levels, *CURVE_LEVELS})
    if calibration is None:
        sets = cross_conformal_sets(pred, every, mondrian=mondrian)
        method = "cross-conformal over the building-grouped folds"
    else:
        sets, mondrian = stored_sets(pred, calibration, every), calibration.mondrian
        method = f"the model's calibration ({calibration.rows} out-of-fold votes)"
    y = oof.labels(pred)[0]

    def measured(index: npt.NDArray[np.intp], tolerance: float | None) -> dict[str, Any]:
        entry = _measure(y[index], {lv: s[index] for lv, s in sets.items()}, levels)
        entry["within"] = (
            None
            if tolerance is None
            else [abs(c - lv) <= tolerance for c, lv in zip(entry["coverage"], levels, strict=True)]
        )
        return entry

    def judged(rows: int) -> float | None:
        return SLICE_TOLERANCE if rows >= SLICE_MIN_ROWS else None

    out: dict[str, Any] = {
        "method": method,
        "mondrian": mondrian,
        "levels": list(levels),
        "overall": measured(np.arange(len(y)), TOLERANCE),
        "curve": {"levels": list(CURVE_LEVELS), **_measure(y, sets, CURVE_LEVELS)},
        "classes": [
            {"value": name, **measured(np.flatnonzero(y == k), None)}
            for k, name in enumerate(CLASS_NAMES)
        ],
        "slices": {},
    }
    for column in COVERAGE_SLICES:
        if column in pred.columns:
            entries = [
                {"value": value, **measured(i, judged(i.size))}
                for value, i in slice_positions(pred, column).items()
            ]
            out["slices"][column] = sorted(entries, key=lambda e: -e["rows"])
    return out


def misses(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The judged slices whose coverage misses a level by more than the tolerance."""
    return [
        {"slice": column, "value": e["value"], "rows": e["rows"], "level": level, "coverage": c}
        for column, entries in report["slices"].items()
        for e in entries
        if e["within"] is not None
        for level, c, ok in zip(report["levels"], e["coverage"], e["within"], strict=True)
        if not ok
    ]
