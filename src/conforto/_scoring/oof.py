"""The predictions frame (``oof.parquet``): one builder, one reader.

One row per scored vote: ``fold`` (−1 outside cross-validation), ``building_id``, ``y`` (the
class index), ``decision`` (the model's class under its decision rule), ``pmv``, then for each
scorer its probabilities ``<scorer>_cool``, ``<scorer>_neutral``, ``<scorer>_warm``, then the
rows' context (``record_id``, ``timestamp``, ``ta``, ``subject_id`` and the slice columns), and
in cross-validation ``adapted_votes`` (earlier votes of the row's site the adapted answer used).
Cross-validation writes it for every model; evaluation builds the same frame on other data; the
report and the gate read it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

from conforto._data.target import CLASS_NAMES
from conforto.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
IndexArray = npt.NDArray[np.intp]

#: Scorers whose probabilities the frame holds: the model (``p``), the majority class, the
#: probabilistic PMV, the scikit-learn candidate and the model adapted to each site by its
#: earlier votes (the last two in cross-validation only).
SCORERS = ("p", "majority", "pmvprob", "logistic", "adapted")
#: Slice columns: every report breaks its scores down by these, when the rows have them.
SLICES = ("cooling_type", "climate", "season", "building_type")
#: The slices the gate and the prediction sets' coverage are judged on.
JUDGED_SLICES = SLICES[:3]
#: Slices with fewer rows are shown but not judged (the gate's default, the sets' coverage).
MIN_SLICE_ROWS = 1000
#: Columns copied from the scored rows, when present: the slices, and what site adaptation
#: reads (the vote's time, air temperature [°C] and occupant).
CONTEXT = ("record_id", "timestamp", "ta", "subject_id", *SLICES)


def columns(scorer: str) -> list[str]:
    """A scorer's probability columns, in class order.

    Examples
    --------
    >>> columns("pmvprob")
    ['pmvprob_cool', 'pmvprob_neutral', 'pmvprob_warm']
    """
    return [f"{scorer}_{name}" for name in CLASS_NAMES]


def build(
    rows: pd.DataFrame,
    *,
    fold: IntArray | int,
    groups: IntArray,
    y: IntArray,
    decision: IntArray,
    pmv: FloatArray,
    scores: Mapping[str, FloatArray],
) -> pd.DataFrame:
    """The predictions frame of ``rows``.

    Parameters
    ----------
    rows
        The scored rows (their context columns are copied).
    fold, groups, y, decision, pmv
        Per row: outer fold (or one value for all), building, class, the model's decision and
        PMV (ISO 7730, NaN outside its limits).
    scores
        Probabilities (rows × 3) by scorer name, one of :data:`SCORERS`.

    Returns
    -------
    pandas.DataFrame
        One row per row of ``rows``, in order.
    """
    frame = pd.DataFrame(
        {"fold": fold, "building_id": groups, "y": y, "decision": decision, "pmv": pmv}
    )
    for scorer, proba in scores.items():
        if scorer not in SCORERS:
            raise ValueError(f"unknown scorer {scorer!r}: one of {SCORERS}")
        for name, column in zip(columns(scorer), proba.T, strict=True):
            frame[name] = column
    for column in CONTEXT:
        if column in rows.columns:
            frame[column] = rows[column].to_numpy()
    return frame


def probabilities(frame: pd.DataFrame, scorer: str = "p") -> FloatArray:
    """A scorer's probabilities (rows × 3) from a predictions frame."""
    return frame[columns(scorer)].to_numpy(dtype=np.float64)


def labels(frame: pd.DataFrame) -> tuple[IntArray, IntArray]:
    """The true classes and the model's decisions of a predictions frame."""
    return frame["y"].to_numpy(dtype=np.int64), frame["decision"].to_numpy(dtype=np.int64)


def held_out(frame: pd.DataFrame, purpose: str) -> Iterator[tuple[BoolArray, pd.DataFrame]]:
    """Each outer fold's rows (a mask) with the frame of the other folds: what cross-fitting
    fits on and where it applies; ``purpose`` names what needs them (errors).

    Raises
    ------
    DataError
        When the frame is not out-of-fold predictions of at least two folds.
    """
    fold = frame["fold"].to_numpy(dtype=np.int64)
    distinct = np.unique(fold)
    if distinct.size < 2 or (distinct < 0).any():
        raise DataError(f"{purpose} needs out-of-fold predictions of ≥ 2 folds")
    for k in distinct:
        test = fold == k
        yield test, frame[~test]


def slices(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, dict[str, IndexArray]]:
    """Row positions of every slice: column → value → positions, for the columns ``frame`` has.

    Missing values form the ``(missing)`` slice.

    Examples
    --------
    >>> frame = pd.DataFrame({"season": ["summer", None, "summer"]})
    >>> slices(frame, ["season", "climate"])
    {'season': {'(missing)': array([1]), 'summer': array([0, 2])}}
    """
    found = {}
    for column in columns:
        if column in frame.columns:
            values = frame[column].astype(object).where(frame[column].notna(), "(missing)")
            found[column] = {
                str(v): np.asarray(i) for v, i in values.groupby(values).indices.items()
            }
    return found
