"""Held-out buildings replayed day by day, as the service would have answered them.

A day is the UTC date of a vote's ``timestamp``. Each day's rows of a site are answered with
the adjustment learned from that site's votes of earlier days only: votes of one day never
see each other, and undated rows are answered zero-shot and teach nothing. On out-of-fold
predictions (each building scored by a booster that never saw it) the replay measures what
the adaptation is worth on buildings the model never saw, and chooses its strength: the
strength a fold's rows are replayed with is the one the *other* folds' replays favour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from conforto._adaptation.site import AdaptationSettings, Votes, fit_site
from conforto._scoring.scores import log_losses

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: The strengths [votes] a cross-validation chooses from.
STRENGTHS: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0)


@dataclass(frozen=True)
class Replay:
    """Every row's answer in the replay.

    Attributes
    ----------
    logp
        Adapted log-probabilities (rows × 3) [nats]; the zero-shot ones where nothing was
        learned.
    votes
        How many votes of earlier days of the row's site the answer used (0 for undated rows
        and a site's first day).
    p_dissatisfied
        The dissatisfied head's adapted probabilities; ``None`` without the head's answers.
    """

    logp: FloatArray
    votes: IntArray
    p_dissatisfied: FloatArray | None = None


def replay(votes: Votes, sites: npt.NDArray[np.generic], settings: AdaptationSettings) -> Replay:
    """Answer every row with what its site's votes of earlier days teach.

    Parameters
    ----------
    votes
        Every row: the zero-shot answer, the vote (−1: none; the row is answered and teaches
        nothing), its day, air temperature and occupant.
    sites
        Each row's site (building); a row without one (``None``, NaN) is answered zero-shot.
    settings
        The adaptation's strength, cap and fading.

    Returns
    -------
    Replay
        In the rows' order.
    """
    logp = votes.logp.copy()
    head = None if votes.p_dissatisfied is None else votes.p_dissatisfied.copy()
    used = np.zeros(len(votes), dtype=np.int64)
    dated = ~np.isnan(votes.day) & pd.notna(sites)
    for site in pd.unique(sites[dated]):
        rows = np.flatnonzero(dated & (sites == site))
        days = votes.day[rows]
        voted = votes.y[rows] >= 0
        for day in np.unique(days):
            earlier = rows[(days < day) & voted]
            if earlier.size == 0:
                continue
            today = rows[days == day]
            asked = {o for o in votes.occupant[today] if o is not None}
            learned = fit_site(votes.take(earlier), settings, day=float(day), occupants=asked)
            logp[today] = learned.apply(logp[today], votes.ta[today], votes.occupant[today])
            if head is not None:
                head[today] = learned.apply_dissatisfied(head[today])
            used[today] = learned.votes
    return Replay(logp, used, head)


@dataclass(frozen=True)
class StrengthChoice:
    """The strength chosen by grouped cross-validation, and the replay it gives.

    Attributes
    ----------
    strength
        Chosen on every fold's rows: what a model trained on all of them stores [votes].
    by_fold
        Each fold's strength, chosen on the other folds' rows.
    replay
        Each fold's rows replayed with its own fold's strength.
    losses
        Mean log loss [nats] of the adapted rows (with at least one earlier vote) by strength.
    """

    strength: float
    by_fold: dict[int, float]
    replay: Replay
    losses: dict[float, float]


def choose_strength(
    votes: Votes,
    sites: npt.NDArray[np.generic],
    folds: IntArray,
    settings: AdaptationSettings,
    strengths: tuple[float, ...] = STRENGTHS,
) -> StrengthChoice:
    """Choose the strength that minimises the replay's log loss on other folds' buildings.

    Parameters
    ----------
    votes, sites
        As for :func:`replay`: every out-of-fold row.
    folds
        Each row's outer fold (its building's).
    settings
        Everything but the strength, which is chosen from ``strengths``.

    Returns
    -------
    StrengthChoice
        Judged on the rows with at least one earlier vote (the others are zero-shot whatever
        the strength).
    """
    replays = {
        s: replay(votes, sites, settings.model_copy(update={"strength": s})) for s in strengths
    }
    adapted = (next(iter(replays.values())).votes > 0) & (votes.y >= 0)
    losses = {s: log_losses(votes.y, np.exp(r.logp)) for s, r in replays.items()}

    def best(rows: npt.NDArray[np.bool_]) -> float:
        if not rows.any():  # nothing adapted: any strength answers alike
            return settings.strength
        return min(strengths, key=lambda s: float(losses[s][rows].mean()))

    logp = votes.logp.copy()
    head = None if votes.p_dissatisfied is None else votes.p_dissatisfied.copy()
    by_fold = {}
    for fold in np.unique(folds).tolist():
        by_fold[fold] = best(adapted & (folds != fold))
        mine = folds == fold
        chosen = replays[by_fold[fold]]
        logp[mine] = chosen.logp[mine]
        if head is not None and chosen.p_dissatisfied is not None:
            head[mine] = chosen.p_dissatisfied[mine]
    mean = {s: float(loss[adapted].mean()) if adapted.any() else 0.0 for s, loss in losses.items()}
    replayed = Replay(logp, replays[strengths[0]].votes, head)
    return StrengthChoice(best(adapted), by_fold, replayed, mean)
