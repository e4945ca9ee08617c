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
from conforto._adaptation.site import AdaptationSettings, Votes, vote_labels
from conforto._model.heads import COLUMNS as HEAD_COLUMNS
from conforto.errors import ArtifactError, ColumnError

if TYPE_CHECKING:
    from conforto._model.artifact import ThermalModel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class EarlierVotes:
    """A file of earlier votes, as :func:`taught` learns from it: the rows the model scored
    (canonical columns), its zero-shot probabilities of them (rows × 3) and its occupants'
    responses (rows × 5, NaN without heads).
    """

    rows: pd.DataFrame
    proba: FloatArray
    responses: FloatArray


@dataclass(frozen=True)
class Answers:
    """Rows' answers: probabilities (rows × 3), occupants' responses (rows × 5, the heads'
    :data:`~conforto._model.heads.COLUMNS`; NaN without heads) and, once adapted, how many
    earlier votes of its site each used.
    """

    proba: FloatArray
    responses: FloatArray
    used: IntArray | None = None


#: Where the dissatisfied head's probability is among the occupants' responses.
DISSATISFIED = HEAD_COLUMNS.index("p_dissatisfied")
#: Columns a replay reads besides the model's inputs.
REPLAY_COLUMNS = frozenset({"site", "building_id", "timestamp", "thermal_sensation", "subject_id"})


def replayed(
    model: ThermalModel, frame: pd.DataFrame, scored: BoolArray, answers: Answers
) -> Answers:
    """The scored rows' answers adapted as the replay does, with how many earlier votes each
    used (the dissatisfied head's answers adapted too; the other responses stay the model's).

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
    answers
        Its zero-shot answers (NaN where not scored).

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
    votes = _votes(rows, answers.proba[scored], answers.responses[scored], site)
    return _spread(answers, scored, replay(votes, rows[site].to_numpy(dtype=object), settings))


def taught(
    model: ThermalModel,
    frame: pd.DataFrame,
    scored: BoolArray,
    answers: Answers,
    earlier: EarlierVotes,
) -> Answers:
    """New rows answered with what a file of earlier votes teaches about their sites.

    A dated row learns from its site's votes of the days before its own; an undated row from
    all of them, as if asked the day after the last.

    Parameters
    ----------
    model, frame, scored, answers
        As for :func:`replayed`: the rows to answer (their own votes, if any, teach nothing).
    earlier
        The votes (``site`` or ``building_id``, ``timestamp``, ``thermal_sensation``, ``ta``,
        ``subject_id`` when known), scored.

    Raises
    ------
    ArtifactError, ColumnError
        As for :func:`replayed` (the rows need a site, the votes a site and a timestamp).
    """
    settings = _settings(model)
    site = _site(frame, "the file", needs=())
    voted_site = _site(earlier.rows, "the votes", needs=("timestamp",))
    rows = frame.loc[scored]
    asked = _votes(rows, answers.proba[scored], answers.responses[scored], site, teach=False)
    known = _votes(earlier.rows, earlier.proba, earlier.responses, voted_site)
    sites = np.concatenate(
        [earlier.rows[voted_site].to_numpy(dtype=object), rows[site].to_numpy(dtype=object)]
    )
    last = pd.Series(known.day).groupby(sites[: len(known)]).max()
    after = pd.Series(rows[site].to_numpy(dtype=object)).map(last).to_numpy(dtype=np.float64) + 1
    asked = replace(asked, day=np.where(np.isnan(asked.day), after, asked.day))

    answered = replay(Votes.join(known, asked), sites, settings)
    head = answered.p_dissatisfied
    mine = Replay(
        answered.logp[len(known) :],
        answered.votes[len(known) :],
        None if head is None else head[len(known) :],
    )
    return _spread(answers, scored, mine)


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


def _votes(
    rows: pd.DataFrame, proba: FloatArray, responses: FloatArray, site: str, *, teach: bool = True
) -> Votes:
    """The adaptation's view of scored rows: their answers (the dissatisfied head's too, when
    the model has heads) and, when ``teach``, their votes.
    """
    labels = np.full(len(rows), -1, dtype=np.int64)
    upset = np.full(len(rows), -1, dtype=np.int64)
    if teach and "thermal_sensation" in rows.columns:
        labels, upset = vote_labels(rows["thermal_sensation"])
    head = responses[:, DISSATISFIED]
    dissatisfied = None if np.isnan(head).all() else (upset, head)
    return votes_from(rows, proba, labels, site=site, dissatisfied=dissatisfied)


def _spread(answers: Answers, scored: BoolArray, replayed: Replay) -> Answers:
    """Every row's answers and adapted votes, from the scored rows' replay."""
    proba, responses = answers.proba.copy(), answers.responses.copy()
    used = np.zeros(len(proba), dtype=np.int64)
    proba[scored] = np.exp(replayed.logp)
    used[scored] = replayed.votes
    if replayed.p_dissatisfied is not None:
        responses[scored, DISSATISFIED] = replayed.p_dissatisfied
    return Answers(proba, responses, used)
