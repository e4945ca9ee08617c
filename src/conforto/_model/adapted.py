"""Batch answers adapted to each site by its occupants' earlier votes.

:func:`replayed`: a file in the database's format (``building_id`` or ``site``, ``timestamp``,
``thermal_sensation``; ``monitor export-feedback``'s output too) answered row by row as the
day-by-day replay does (:mod:`conforto._adaptation.replay`): each row with what the votes of
earlier days of its site teach, with the model's stored adaptation settings. A row's own vote,
and the votes of its day, never shape its answer; undated rows and rows without a site are
answered zero-shot. :func:`taught`: new rows answered with what a file of earlier votes teaches.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

from conforto._adaptation.frame import votes_from
from conforto._adaptation.replay import Replay, replay
from conforto._adaptation.site import AdaptationSettings, Votes
from conforto._data.target import sensation_class
from conforto.errors import ArtifactError, ColumnError

if TYPE_CHECKING:
    from conforto._model.artifact import ThermalModel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class EarlierVotes:
    """A file of earlier votes, as :func:`taught` learns from it: the rows the model scored
    (canonical columns) and its zero-shot probabilities of them (rows × 3).
    """

    rows: pd.DataFrame
    proba: FloatArray


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
    settings = _settings(model)
    site = _site(frame, "the file", needs=("timestamp",))
    rows = frame.loc[scored]
    votes = _votes(rows, proba[scored], site)
    answered = replay(votes, rows[site].to_numpy(dtype=object), settings)
    return _spread(proba, scored, answered)


def taught(
    model: ThermalModel,
    frame: pd.DataFrame,
    scored: BoolArray,
    proba: FloatArray,
    earlier: pd.DataFrame,
    earlier_proba: FloatArray,
) -> tuple[FloatArray, IntArray]:
    """New rows answered with what a file of earlier votes teaches about their sites.

    A dated row learns from its site's votes of the days before its own; an undated row from
    all of them, as if asked the day after the last.

    Parameters
    ----------
    model, frame, scored, proba
        As for :func:`replayed`: the rows to answer (their own votes, if any, teach nothing).
    earlier
        The votes: ``site`` or ``building_id``, ``timestamp``, ``thermal_sensation``, ``ta``,
        ``subject_id`` when known; the rows the model scored.
    earlier_proba
        The model's zero-shot probabilities of ``earlier`` (rows × 3).

    Raises
    ------
    ArtifactError, ColumnError
        As for :func:`replayed` (the rows need a site, the votes a site and a timestamp).
    """
    settings = _settings(model)
    site = _site(frame, "the file", needs=())
    voted_site = _site(earlier, "the votes", needs=("timestamp",))
    rows = frame.loc[scored]
    asked = _votes(rows, proba[scored], site, teach=False)
    known = _votes(earlier, earlier_proba, voted_site)
    sites = np.concatenate(
        [earlier[voted_site].to_numpy(dtype=object), rows[site].to_numpy(dtype=object)]
    )
    last = pd.Series(known.day).groupby(sites[: len(known)]).max()
    after = pd.Series(rows[site].to_numpy(dtype=object)).map(last).to_numpy(dtype=np.float64) + 1
    asked = replace(asked, day=np.where(np.isnan(asked.day), after, asked.day))

    answered = replay(Votes.join(known, asked), sites, settings)
    mine = Replay(answered.logp[len(known) :], answered.votes[len(known) :])
    return _spread(proba, scored, mine)


def _settings(model: ThermalModel) -> AdaptationSettings:
    """The model's adaptation, or why it has none."""
    if model.manifest.adaptation is None:
        raise ArtifactError(
            f"model {model.manifest.name} was trained before site adaptation and cannot learn "
            "from votes: train it again (conforto train) or predict without --replay/--votes."
        )
    return model.manifest.adaptation


def _site(frame: pd.DataFrame, what: str, *, needs: tuple[str, ...]) -> str:
    """The column naming each row's site (``site``, else ``building_id``), checked."""
    site = "site" if "site" in frame.columns else "building_id"
    missing = [c for c in (site, *needs) if c not in frame.columns]
    if missing:
        wanted = " and ".join(["site (site or building_id)", *needs])
        raise ColumnError(
            f"learning from votes needs each row's {wanted}; {what} has no "
            f"{' and no '.join(missing)}."
        )
    return site


def _votes(rows: pd.DataFrame, proba: FloatArray, site: str, *, teach: bool = True) -> Votes:
    """The adaptation's view of scored rows: their answers and, when ``teach``, their votes."""
    labels = np.full(len(rows), -1, dtype=np.int64)
    if teach and "thermal_sensation" in rows.columns:
        vote = sensation_class(rows["thermal_sensation"])
        labels = np.where(np.isnan(vote), -1, vote).astype(np.int64)
    return votes_from(rows, proba, labels, site=site)


def _spread(proba: FloatArray, scored: BoolArray, answered: Replay) -> tuple[FloatArray, IntArray]:
    """Every row's probabilities and adapted votes, from the scored rows' replay."""
    adapted, used = proba.copy(), np.zeros(len(proba), dtype=np.int64)
    adapted[scored] = np.exp(answered.logp)
    used[scored] = answered.votes
    return adapted, used
