"""Votes for the adaptation from a predictions frame (``oof.parquet``'s shape).

A vote's day is the UTC date of its ``timestamp``; its occupant is its ``subject_id`` within its
building (the database numbers subjects per study, so the same number in two buildings is two
people).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from conforto._adaptation.site import SMALLEST, Votes
from conforto._data.load import utc_timestamps
from conforto._scoring import oof

FloatArray = npt.NDArray[np.float64]
EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def days(timestamps: pd.Series) -> FloatArray:
    """Whole days since 1970-01-01 of each timestamp's UTC date; NaN where there is none.

    Examples
    --------
    >>> days(pd.Series(["1970-01-02T23:00:00Z", "1970-01-02T01:00:00-03:00", None])).tolist()
    [1.0, 1.0, nan]
    """
    when = utc_timestamps(timestamps)
    return np.asarray(when.dt.floor("D").sub(EPOCH).dt.days, dtype=np.float64)


def occupants(frame: pd.DataFrame, *, site: str = "building_id") -> npt.NDArray[np.object_]:
    """Each row's occupant (``"<site>:<subject>"``), ``None`` where the subject is unknown.

    Examples
    --------
    >>> occupants(pd.DataFrame({"building_id": [3, 3.0], "subject_id": [17.0, None]})).tolist()
    ['3:17', None]
    """
    found = np.full(len(frame), None, dtype=object)
    if "subject_id" not in frame.columns:
        return found
    known = (frame["subject_id"].notna() & frame[site].notna()).to_numpy()
    pairs = zip(frame[site][known], frame["subject_id"][known], strict=True)
    found[known] = [f"{_label(s)}:{_label(o)}" for s, o in pairs]
    return found


def _label(value: object) -> str:
    """A site's or subject's name: whole numbers without their ``.0`` (files read them as
    floats).
    """
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def votes_of(frame: pd.DataFrame, scorer: str = "p") -> Votes:
    """The adaptation's view of a predictions frame: ``scorer``'s answers and the votes.

    Parameters
    ----------
    frame
        ``y``, ``building_id``, ``scorer``'s probabilities, and when present ``timestamp``,
        ``ta`` [°C], ``subject_id`` and the dissatisfied head's ``dissatisfied`` (label, −1
        where none) and ``p_dissatisfied``.
    scorer
        Whose answers the adaptation adjusts (see :data:`conforto._scoring.oof.SCORERS`).
    """
    head = None
    if {"dissatisfied", "p_dissatisfied"} <= set(frame.columns):
        head = (
            frame["dissatisfied"].to_numpy(dtype=np.int64),
            frame["p_dissatisfied"].to_numpy(dtype=np.float64),
        )
    y = frame["y"].to_numpy(dtype=np.int64)
    return votes_from(frame, oof.probabilities(frame, scorer), y, dissatisfied=head)


def votes_from(
    rows: pd.DataFrame,
    proba: FloatArray,
    y: npt.NDArray[np.int64],
    *,
    site: str = "building_id",
    dissatisfied: tuple[npt.NDArray[np.int64], FloatArray] | None = None,
) -> Votes:
    """The adaptation's view of rows the model answered.

    Parameters
    ----------
    rows
        ``site``, and when present ``timestamp``, ``ta`` [°C] and ``subject_id``.
    proba
        The model's answers (rows × 3).
    y
        The votes' classes, −1 where a row has none.
    site
        The column naming each row's site.
    dissatisfied
        The votes' dissatisfied labels (−1 where none) and the dissatisfied head's
        probabilities, when the model has the head.
    """
    missing = pd.Series(np.full(len(rows), np.nan))
    return Votes(
        logp=np.log(np.clip(proba, SMALLEST, 1.0)),
        y=y,
        day=days(rows["timestamp"] if "timestamp" in rows.columns else missing),
        ta=(rows["ta"] if "ta" in rows.columns else missing).to_numpy(dtype=np.float64),
        occupant=occupants(rows, site=site),
        dissatisfied=None if dissatisfied is None else dissatisfied[0],
        p_dissatisfied=None if dissatisfied is None else dissatisfied[1],
    )
