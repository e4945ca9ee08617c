"""Votes for the adaptation from a predictions frame (``oof.parquet``'s shape).

A vote's day is the UTC date of its ``timestamp``; its occupant is its ``subject_id`` within its
building (the database numbers subjects per study, so the same number in two buildings is two
people).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from conforto._adaptation.site import Votes
from conforto._scoring import oof

FloatArray = npt.NDArray[np.float64]
#: Probabilities are clipped at this before their logarithm (an answer of 0 stays finite).
SMALLEST = 1e-12
EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def days(timestamps: pd.Series) -> FloatArray:
    """Whole days since 1970-01-01 of each timestamp's UTC date; NaN where there is none.

    Examples
    --------
    >>> days(pd.Series(["1970-01-02T23:00:00Z", "1970-01-02T01:00:00-03:00", None])).tolist()
    [1.0, 1.0, nan]
    """
    when = pd.to_datetime(timestamps, errors="coerce", utc=True, format="ISO8601")
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
        ``ta`` [°C] and ``subject_id``.
    scorer
        Whose answers the adaptation adjusts (see :data:`conforto._scoring.oof.SCORERS`).
    """
    n = len(frame)
    missing = pd.Series(np.full(n, np.nan))
    proba = oof.probabilities(frame, scorer)
    return Votes(
        logp=np.log(np.clip(proba, SMALLEST, 1.0)),
        y=frame["y"].to_numpy(dtype=np.int64),
        day=days(frame["timestamp"] if "timestamp" in frame.columns else missing),
        ta=frame["ta"].to_numpy(dtype=np.float64) if "ta" in frame.columns else missing.to_numpy(),
        occupant=occupants(frame),
    )
