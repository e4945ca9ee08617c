"""Occupants' votes as training data: the voted predictions of the log, in the database's format.

Each voted prediction becomes one row with the database's column names: its inputs as sent,
its latest vote as ``thermal_sensation``, ``timestamp`` (when it was answered),
``prediction_id`` and ``building_id``: the caller's ``site`` where it named one, else one
group per day, so that building-grouped cross-validation never splits a site (or a day) across
training and evaluation. ``conforto pipeline run --extra-data`` takes the file beside the
training data.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from conforto._fileio import atomic_writer
from conforto._model.inputs import INPUTS
from conforto._monitor.window import Span, read_predictions, read_votes

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

#: ``building_id`` of exported rows: sites from 10,000,000, days from 20,000,000 (the database's
#: own buildings are numbered below 10,000).
SITE_IDS, DAY_IDS = 10_000_000, 20_000_000
#: The file's columns: the database's names, the inputs the API takes, the vote.
COLUMNS = (
    "prediction_id",
    "building_id",
    "timestamp",
    "site",
    *(i.name for i in INPUTS),
    "thermal_sensation",
)


def site_building_id(site: str) -> int:
    """A stable building id for a site name (crc32, offset past the database's ids).

    Examples
    --------
    >>> site_building_id("Florianópolis, bloco B")
    13597409
    """
    return SITE_IDS + zlib.crc32(site.encode()) % SITE_IDS


def _rows(frame: pd.DataFrame, votes: pd.DataFrame) -> pd.DataFrame:
    voted = frame.merge(votes, on="prediction_id", how="inner")
    days = (voted["created"] - pd.Timestamp("1970-01-01", tz="UTC")).dt.days + DAY_IDS
    site = voted["site"] if "site" in voted.columns else pd.Series(None, index=voted.index)
    building = site.map(lambda s: site_building_id(s) if isinstance(s, str) else np.nan)
    voted["building_id"] = building.fillna(days).astype(np.int64)
    voted["timestamp"] = voted["created"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return voted.reindex(columns=list(COLUMNS))


def export_feedback(
    url: str,
    out: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    """Write every voted prediction of the log to ``out`` (CSV), written whole or not at all;
    the same votes write the same bytes.

    Parameters
    ----------
    url
        The prediction log's database.
    out
        The CSV to write.
    since
        Only predictions answered since then (default: all).
    until
        Only predictions answered, and votes given, before then (default: now): a run that
        gathers the votes up to its start gathers the same ones however long it takes.
    on_chunk
        Called with the rows of each chunk of predictions read.

    Returns
    -------
    int
        Rows written (voted predictions).
    """
    end = until or datetime.now(UTC)
    span = Span(since or datetime(1970, 1, 1, tzinfo=UTC), end)
    written = 0
    with atomic_writer(out, "w") as handle:
        pd.DataFrame(columns=list(COLUMNS)).to_csv(handle, index=False)
        for frame in read_predictions(url, span, on_chunk=on_chunk):
            rows = _rows(frame, read_votes(url, frame["prediction_id"].tolist(), end))
            rows.to_csv(handle, index=False, header=False)
            written += len(rows)
    return written
