"""Batch answers adapted to each site by its occupants' earlier votes, as the replay gives them.

A file in the database's format (``building_id`` or ``site``, ``timestamp``,
``thermal_sensation``; ``monitor export-feedback``'s output too) is answered row by row as the
day-by-day replay does (:mod:`conforto._adaptation.replay`): each row with what the votes of
earlier days of its site teach, with the model's stored adaptation settings. A row's own vote,
and the votes of its day, never shape its answer; undated rows and rows without a site are
answered zero-shot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from conforto._adaptation.frame import SMALLEST, days, occupants
from conforto._adaptation.replay import replay
from conforto._adaptation.site import Votes
from conforto._data.target import sensation_class
from conforto.errors import ArtifactError, ColumnError

if TYPE_CHECKING:
    import pandas as pd

    from conforto._model.artifact import ThermalModel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
#: Columns a replay reads besides the model's inputs.
REPLAY_COLUMNS = frozenset({"site", "building_id", "timestamp", "thermal_sensation", "subject_id"})


def replayed(
    model: ThermalModel, frame: pd.DataFrame, scored: BoolArray, proba: FloatArray
) -> tuple[FloatArray, IntArray]:
    """The adapted probabilities of the scored rows, and how many earlier votes each used.

    Parameters
    ----------
    model
        The model that answered (its manifest says how it adapts).
    frame
        The rows, canonical columns: ``site`` or ``building_id``, ``timestamp``,
        ``thermal_sensation`` (rows without one are answered and teach nothing), ``ta``,
        ``subject_id`` when known.
    scored
        The rows the model answered.
    proba
        Its zero-shot probabilities (rows × 3, NaN where not scored).

    Returns
    -------
    tuple
        Probabilities (rows × 3) and ``adapted_votes`` per row (0 where nothing was learned).

    Raises
    ------
    ArtifactError
        When the model stores no adaptation (trained before site adaptation).
    ColumnError
        When the file names no site (``site`` or ``building_id``) or has no ``timestamp``.
    """
    settings = model.manifest.adaptation
    if settings is None:
        raise ArtifactError(
            f"model {model.manifest.name} was trained before site adaptation and cannot replay "
            "votes: train it again (conforto train) or predict without --replay."
        )
    site = "site" if "site" in frame.columns else "building_id"
    missing = [c for c in (site, "timestamp") if c not in frame.columns]
    if missing:
        raise ColumnError(
            f"a replay needs each row's site (site or building_id) and timestamp; the file has "
            f"no {' and no '.join(missing)}."
        )
    rows = frame.loc[scored]
    labels = np.full(len(rows), -1, dtype=np.int64)
    if "thermal_sensation" in rows.columns:
        vote = sensation_class(rows["thermal_sensation"])
        labels = np.where(np.isnan(vote), -1, vote).astype(np.int64)
    votes = Votes(
        logp=np.log(np.clip(proba[scored], SMALLEST, 1.0)),
        y=labels,
        day=days(rows["timestamp"]),
        ta=rows["ta"].to_numpy(dtype=np.float64),
        occupant=occupants(rows, site=site),
    )
    answered = replay(votes, rows[site].to_numpy(dtype=object), settings)
    adapted, used = proba.copy(), np.zeros(len(frame), dtype=np.int64)
    adapted[scored] = np.exp(answered.logp)
    used[scored] = answered.votes
    return adapted, used
