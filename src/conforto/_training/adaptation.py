"""Site adaptation chosen and judged on the cross-validation's out-of-fold predictions.

No booster is fitted again: every held-out building is replayed day by day from the answers
its fold's booster gave (:mod:`conforto._adaptation.replay`), each fold with the strength the
other folds favour; the strength the model stores is the one all folds favour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

import numpy as np
import numpy.typing as npt

from conforto._adaptation.frame import votes_of
from conforto._adaptation.replay import choose_strength
from conforto._adaptation.report import BucketScores, Dissatisfied, by_earlier_votes, compare
from conforto._scoring import oof
from conforto._uncertainty.calibration import cross_conformal_sets

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

    from conforto._adaptation.site import AdaptationSettings

#: The headline: votes with at least this many earlier votes of their site.
HEADLINE_VOTES = 20
#: The level of the prediction sets whose coverage the replay reports.
COVERAGE_LEVEL = 0.9
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class AdaptationSummary(TypedDict):
    """How the adaptation did in the replay (``metrics.json``'s ``cv.adaptation``)."""

    #: What the model stores: the chosen strength with the configured cap, fading and terms.
    settings: dict[str, float | None]
    #: Each fold's strength [votes], chosen on the other folds.
    strength_by_fold: list[float]
    #: Mean log loss of the adapted votes [nats] for each candidate strength.
    log_loss_by_strength: dict[str, float]
    #: Votes by number of earlier votes of their site (0, 1-9, 10-19, 20-39, 40+).
    buckets: list[BucketScores]
    #: The votes with at least :data:`HEADLINE_VOTES` earlier votes of their site, if any.
    headline: BucketScores | None


def adapt_out_of_fold(
    predictions: pd.DataFrame,
    class_weights: Sequence[Sequence[float]],
    settings: AdaptationSettings,
    strengths: tuple[float, ...],
    *,
    conformal_by: str = "all",
    coverage_level: float = COVERAGE_LEVEL,
    seed: int = 0,
) -> tuple[AdaptationSettings, AdaptationSummary]:
    """Replay the out-of-fold predictions with site adaptation; add its answers to the frame.

    Parameters
    ----------
    predictions
        The cross-validation's predictions frame (``fold``, ``building_id``, ``y``, ``p_*``,
        ``timestamp``, ``ta``, ``subject_id``; ``dissatisfied`` and ``p_dissatisfied`` with a
        dissatisfied head); gains the ``adapted_*`` probabilities (``adapted_dissatisfied``
        too) and ``adapted_votes`` (earlier votes of the row's site used) in place.
    class_weights
        Each fold's decision weights (cool, neutral, warm), by fold number.
    settings
        Cap, fading and terms; the strength is chosen among ``strengths``.
    conformal_by, coverage_level
        How the prediction sets are calibrated, and the level whose coverage is reported: the
        sets of adapted answers come from the calibration on the other folds' zero-shot
        answers, as the model's stored calibration will treat them.
    seed
        Seed of the building bootstrap.

    Returns
    -------
    tuple
        The settings the model stores, and the replay's summary.
    """
    votes = votes_of(predictions)
    buildings = predictions["building_id"].to_numpy(dtype=np.int64)
    folds = predictions["fold"].to_numpy(dtype=np.int64)
    choice = choose_strength(votes, buildings, folds, settings, strengths)
    adapted = np.exp(choice.replay.logp)
    for name, column in zip(oof.columns("adapted"), adapted.T, strict=True):
        predictions[name] = column
    predictions["adapted_votes"] = choice.replay.votes
    head: Dissatisfied | None = None
    adapted_head = choice.replay.p_dissatisfied
    if (
        votes.dissatisfied is not None
        and votes.p_dissatisfied is not None
        and adapted_head is not None
    ):
        predictions["adapted_dissatisfied"] = adapted_head
        head = (votes.dissatisfied, votes.p_dissatisfied, adapted_head)
    zero_shot = oof.probabilities(predictions)
    weights = np.asarray(class_weights, dtype=np.float64)[folds]
    used = choice.replay.votes
    headline = used >= HEADLINE_VOTES
    covered = _covered(predictions, adapted, weights, level=coverage_level, by=conformal_by)
    chosen = settings.model_copy(update={"strength": choice.strength})
    summary = AdaptationSummary(
        settings=chosen.model_dump(),
        strength_by_fold=[choice.by_fold[k] for k in sorted(choice.by_fold)],
        log_loss_by_strength={f"{s:g}": loss for s, loss in choice.losses.items()},
        buckets=by_earlier_votes(
            votes.y,
            zero_shot,
            adapted,
            used,
            weights,
            buildings,
            covered=covered,
            dissatisfied=head,
            seed=seed,
        ),
        headline=compare(
            votes.y[headline],
            zero_shot[headline],
            adapted[headline],
            weights[headline],
            buildings[headline],
            label=f"{HEADLINE_VOTES}+",
            covered=(covered[0][headline], covered[1][headline]),
            dissatisfied=None
            if head is None
            else (head[0][headline], head[1][headline], head[2][headline]),
            seed=seed,
        )
        if headline.any()
        else None,
    )
    return chosen, summary


def _covered(
    predictions: pd.DataFrame, adapted: FloatArray, weights: FloatArray, *, level: float, by: str
) -> tuple[BoolArray, BoolArray]:
    """Whether each vote lies inside its zero-shot and its adapted prediction set at ``level``."""
    y = predictions["y"].to_numpy(dtype=np.int64)
    decision = (adapted * weights).argmax(axis=1)
    rows = np.arange(len(y))
    zero_shot = cross_conformal_sets(predictions, [level], by=by)[level]
    answers = cross_conformal_sets(predictions, [level], by=by, answers=(adapted, decision))[level]
    return zero_shot[rows, y], answers[rows, y]
