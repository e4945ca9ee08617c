"""What an evaluation reports: the shape of :func:`conforto._training.evaluate.summarise`'s
summary (stored in ``metrics.json`` under ``cv``, or ``holdout`` for other data).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NotRequired, TypedDict

from conforto._scoring.scores import Scores

if TYPE_CHECKING:
    from conforto._scoring.scores import Interval
    from conforto._training.adaptation import AdaptationSummary
    from conforto._training.heads import HeadEvaluation
    from conforto._uncertainty.calibration import CoverageReport
    from conforto._uncertainty.estimate import EstimateReport


class ModelScores(Scores):
    """The model's scores, with bootstrap intervals over buildings."""

    ci: Interval


class SliceScores(TypedDict):
    """The model's (and PMV's) scores on one slice of the votes."""

    value: str
    rows: int
    buildings: int
    accuracy: float
    macro_f1: float
    #: PMV's macro-F1 on the slice's rows that have a PMV (``None``: none has).
    pmv_macro_f1: float | None
    #: Bootstrap intervals over buildings, for slices of enough rows.
    ci: NotRequired[Interval]


class PmvRows(TypedDict):
    """The model and the PMV baselines on the rows where PMV exists."""

    rows: int
    model: Scores
    pmv: Scores
    probabilistic_pmv: Scores


class Confusions(TypedDict):
    """Confusion matrices (true class × answered class: cool, neutral, warm)."""

    model: list[list[int]]
    pmv: list[list[int]]


class ClassShare(TypedDict):
    """Votes per class, and answers per class."""

    true: list[int]
    predicted: list[int]


class Evaluation(TypedDict):
    """The model against its baselines on the same votes, with slices."""

    model: ModelScores
    #: The most probable class answered (instead of the decision rule).
    model_argmax: Scores
    #: Candidate → its scores on the same folds.
    candidates: dict[str, Scores]
    selected: str
    majority: Scores
    pmv_rows: PmvRows
    confusion: Confusions
    #: ``predicted_k``, ``observed_k`` and ``count_k`` of class ``k`` per probability bin.
    reliability: dict[str, list[float]]
    class_share: ClassShare
    #: Slice column → its slices, largest first.
    slices: dict[str, list[SliceScores]]
    #: The occupant-response heads against their baselines (head → its evaluation).
    heads: NotRequired[dict[str, HeadEvaluation]]
    #: Why there are no heads (the data lacked the occupants' answers).
    heads_skipped: NotRequired[str]
    coverage: NotRequired[CoverageReport]
    estimate: NotRequired[EstimateReport]
    #: Site adaptation replayed day by day (cross-validation only).
    adaptation: NotRequired[AdaptationSummary]


class FoldFit(TypedDict):
    """What one outer fold's booster came to."""

    fold: int
    buildings: int
    rows: int
    rounds: int
    temperature: float
    class_weights: list[float]


class MetricsFile(TypedDict, total=False):
    """``metrics.json``: the cross-validation's summary (``cv``, with the folds' fits and the
    random-split protocol), or an evaluation's on other data (``holdout``).
    """

    cv: Evaluation
    holdout: Evaluation
    #: ``all_rows`` and ``literature_subset`` → accuracy, macro-F1, rows and rounds.
    random_split: dict[str, dict[str, float]]
    folds: list[FoldFit]
