"""The replay's scores by how many earlier votes of their site the answers had.

Votes are put in buckets by the number of earlier-day votes of their site the adaptation
learned from (0, 1-9, 10-19, 20-39, 40+). In each, the adapted answers are compared with the
zero-shot ones on the same votes: macro-F1 under the model's decision rule, log loss and, where
the model has a dissatisfied head, that head's Brier score, with 95 % intervals of the
difference from a bootstrap that resamples whole buildings (the votes of one building are not
independent), paired (the same draw for both answers).
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

import numpy as np
import numpy.typing as npt

from conforto._scoring.scores import (
    cluster_draws,
    log_losses,
    macro_f1,
    paired_differences,
    replicate_means,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
#: The dissatisfied head's labels (1 dissatisfied, 0 not, −1 no vote) and its zero-shot and
#: adapted probabilities, one each a vote.
Dissatisfied = tuple[IntArray, FloatArray, FloatArray]

#: Buckets of earlier votes: (label, fewest, most); ``None``: no upper limit.
BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0", 0, 0),
    ("1-9", 1, 9),
    ("10-19", 10, 19),
    ("20-39", 20, 39),
    ("40+", 40, None),
)


class Difference(TypedDict):
    """Adapted minus zero-shot, with its 95 % bootstrap interval."""

    value: float
    low: float
    high: float


class Answered(TypedDict):
    """One way of answering the bucket's votes, scored."""

    macro_f1: float
    #: Mean log loss [nats per vote].
    log_loss: float
    #: Share of the votes inside their prediction set, when the sets were given.
    coverage: NotRequired[float]
    #: Brier score of the dissatisfied head (mean squared error of P(dissatisfied)), if any.
    dissatisfied_brier: NotRequired[float]


class BucketScores(TypedDict):
    """The zero-shot and adapted answers' scores on one bucket's votes.

    Attributes
    ----------
    bucket
        Its label (``"20-39"``; ``"20+"`` for votes with at least 20).
    votes, buildings
        How many votes, of how many buildings.
    zero_shot, adapted
        The two answers' scores.
    macro_f1_gain, log_loss_change, dissatisfied_brier_change
        Adapted minus zero-shot, with 95 % building-bootstrap intervals (the last where the
        model has a dissatisfied head).
    """

    bucket: str
    votes: int
    buildings: int
    zero_shot: Answered
    adapted: Answered
    macro_f1_gain: Difference
    log_loss_change: Difference
    dissatisfied_brier_change: NotRequired[Difference]


def bucket_of(votes: IntArray) -> npt.NDArray[np.str_]:
    """Each row's bucket label, from its number of earlier votes.

    Examples
    --------
    >>> bucket_of(np.array([0, 5, 19, 20, 400])).tolist()
    ['0', '1-9', '10-19', '20-39', '40+']
    """
    labels = np.empty(len(votes), dtype=object)
    for label, low, high in BUCKETS:
        labels[(votes >= low) & (votes <= (high if high is not None else np.inf))] = label
    return labels.astype(str)


def compare(
    y: IntArray,
    zero_shot: FloatArray,
    adapted: FloatArray,
    weights: FloatArray,
    buildings: IntArray,
    *,
    label: str,
    covered: tuple[BoolArray, BoolArray] | None = None,
    dissatisfied: Dissatisfied | None = None,
    reps: int = 200,
    seed: int = 0,
) -> BucketScores:
    """Scores of zero-shot and adapted probabilities on the same votes, paired by building.

    Parameters
    ----------
    y
        Class indices of the votes.
    zero_shot, adapted
        Probabilities (votes × 3).
    weights
        The decision rule's class weights: one row (3) or one per vote (votes × 3).
    buildings
        Each vote's building: the bootstrap's clusters.
    label
        The bucket's label.
    covered
        Whether each vote lies inside its zero-shot and its adapted prediction set.
    dissatisfied
        The dissatisfied head's labels and its zero-shot and adapted probabilities.
    reps, seed
        Bootstrap replicates and seed.
    """
    decided = [(p * weights).argmax(axis=1) for p in (zero_shot, adapted)]
    losses = [log_losses(y, p) for p in (zero_shot, adapted)]
    replicates = paired_differences(
        y, (adapted, decided[1]), (zero_shot, decided[0]), buildings, reps=reps, seed=seed
    )
    scores = [macro_f1(y, decision) for decision in decided]
    answered = [
        Answered(macro_f1=f, log_loss=float(loss.mean()))
        for f, loss in zip(scores, losses, strict=True)
    ]
    if covered is not None:
        for entry, inside in zip(answered, covered, strict=True):
            entry["coverage"] = float(inside.mean())
    found = BucketScores(
        bucket=label,
        votes=len(y),
        buildings=int(np.unique(buildings).size),
        zero_shot=answered[0],
        adapted=answered[1],
        macro_f1_gain=_difference(scores[1] - scores[0], replicates["macro_f1"]),
        log_loss_change=_difference(
            float(losses[1].mean() - losses[0].mean()), replicates["log_loss"]
        ),
    )
    if dissatisfied is not None:
        _brier(found, dissatisfied, buildings, reps=reps, seed=seed)
    return found


def _brier(
    found: BucketScores, head: Dissatisfied, buildings: IntArray, *, reps: int, seed: int
) -> None:
    """Add the dissatisfied head's Brier scores and their paired difference to ``found``."""
    labels, zero_shot, adapted = head
    known = (labels >= 0) & ~np.isnan(zero_shot) & ~np.isnan(adapted)
    if not known.any():
        return
    errors = [(p[known] - labels[known]) ** 2 for p in (zero_shot, adapted)]
    found["zero_shot"]["dissatisfied_brier"] = float(errors[0].mean())
    found["adapted"]["dissatisfied_brier"] = float(errors[1].mean())
    inverse, draws = cluster_draws(buildings[known].astype(np.int64), reps, seed)
    found["dissatisfied_brier_change"] = _difference(
        float(errors[1].mean() - errors[0].mean()),
        replicate_means(errors[1] - errors[0], inverse, draws),
    )


def _difference(value: float, replicates: FloatArray) -> Difference:
    low, high = np.percentile(replicates, [2.5, 97.5]).tolist()
    return Difference(value=value, low=low, high=high)


def by_earlier_votes(
    y: IntArray,
    zero_shot: FloatArray,
    adapted: FloatArray,
    earlier: IntArray,
    weights: FloatArray,
    buildings: IntArray,
    *,
    covered: tuple[BoolArray, BoolArray] | None = None,
    dissatisfied: Dissatisfied | None = None,
    reps: int = 200,
    seed: int = 0,
) -> list[BucketScores]:
    """:func:`compare` on every bucket of :data:`BUCKETS` that has votes, in order.

    Parameters
    ----------
    earlier
        Each vote's number of earlier votes of its site the adapted answer used.
    covered, dissatisfied
        As for :func:`compare`, for every vote.
    """
    labels = bucket_of(earlier)
    found = []
    for label, _, _ in BUCKETS:
        rows = labels == label
        if rows.any():
            w = weights if weights.ndim == 1 else weights[rows]
            found.append(
                compare(
                    y[rows],
                    zero_shot[rows],
                    adapted[rows],
                    w,
                    buildings[rows],
                    label=label,
                    covered=None if covered is None else (covered[0][rows], covered[1][rows]),
                    dissatisfied=None
                    if dissatisfied is None
                    else (dissatisfied[0][rows], dissatisfied[1][rows], dissatisfied[2][rows]),
                    reps=reps,
                    seed=seed,
                )
            )
    return found
