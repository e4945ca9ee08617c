"""Classification metrics for 3-class thermal sensation, with bootstrap intervals."""

from __future__ import annotations

from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
N_CLASSES = 3
ECE_BINS = 15


def confusion(y: IntArray, pred: IntArray, n: int = N_CLASSES) -> IntArray:
    """Confusion matrix, rows true class, columns predicted class."""
    return np.bincount(y * n + pred, minlength=n * n).reshape(n, n).astype(np.int64)


def macro_f1_from_confusion(cms: npt.NDArray[np.floating[Any] | np.integer[Any]]) -> FloatArray:
    """Macro-F1 of a confusion matrix, or of each of a stack of them (shape ``(..., n, n)``)."""
    tp = np.diagonal(cms, axis1=-2, axis2=-1).astype(np.float64)
    denom = cms.sum(axis=-2) + cms.sum(axis=-1)
    f1 = np.divide(2 * tp, denom, out=np.zeros(denom.shape), where=denom > 0)
    return np.asarray(f1.mean(axis=-1), dtype=np.float64)


def _f1_from_confusion(cm: npt.NDArray[np.int64]) -> float:
    return float(macro_f1_from_confusion(cm))


def cluster_draws(
    groups: npt.NDArray[np.int64], reps: int, seed: int
) -> tuple[IntArray, FloatArray]:
    """Bootstrap replicates that resample whole clusters (buildings) with replacement.

    Returns
    -------
    tuple
        ``(inverse, draws)``: the cluster index of every row, and how many times each cluster is
        drawn in each replicate (``reps × clusters``). A per-cluster statistic ``s`` (clusters ×
        k) gives the replicates' totals as ``draws @ s``.
    """
    ids, inverse = np.unique(groups, return_inverse=True)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(ids), np.full(len(ids), 1.0 / len(ids)), size=reps)
    return inverse.astype(np.int64), draws.astype(np.float64)


def replicate_means(values: FloatArray, inverse: IntArray, draws: FloatArray) -> FloatArray:
    """Each bootstrap replicate's mean of per-row ``values`` (``inverse`` and ``draws`` from
    :func:`cluster_draws`).
    """
    clusters = draws.shape[1]
    totals = np.bincount(inverse, values, minlength=clusters)
    rows = np.bincount(inverse, minlength=clusters).astype(np.float64)
    return np.asarray((draws @ totals) / (draws @ rows), dtype=np.float64)


def macro_f1(y: IntArray, pred: IntArray) -> float:
    """Unweighted mean of the per-class F1 scores.

    Examples
    --------
    >>> macro_f1(np.array([0, 1, 2, 2]), np.array([0, 1, 2, 1]))
    0.7777777777777777
    """
    return _f1_from_confusion(confusion(y, pred))


def log_losses(y: IntArray, proba: FloatArray) -> FloatArray:
    """Each row's log loss [nats]: ``-log p(true class)``, probabilities clipped at 1e-15.

    Examples
    --------
    >>> log_losses(np.array([0, 2]), np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])).round(2)
    array([ 0.69, 34.54])
    """
    picked = np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)
    return np.asarray(-np.log(picked), dtype=np.float64)


def expected_calibration_error(
    y: IntArray, proba: FloatArray, bins: int = ECE_BINS, weights: FloatArray | None = None
) -> float:
    """Top-label expected calibration error over equal-width confidence bins.

    Parameters
    ----------
    y
        True class indices.
    proba
        Predicted probabilities, rows summing to 1.
    bins
        Number of confidence bins.
    weights
        Each row's weight (for example how often a bootstrap replicate draws it); default 1.

    Returns
    -------
    float
        Weighted mean |accuracy - confidence| over bins [0-1].
    """
    w = np.ones(len(y)) if weights is None else weights
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = np.bincount(which, w, minlength=bins).sum()
    gap = np.abs(
        np.bincount(which, w * correct, minlength=bins)
        - np.bincount(which, w * confidence, minlength=bins)
    )
    return float(gap.sum() / total) if total else float("nan")


class Scores(TypedDict):
    """How well a classifier's answers and probabilities match the votes."""

    rows: float
    accuracy: float
    macro_f1: float
    balanced_accuracy: float
    #: Mean negative log-likelihood [nats].
    log_loss: float
    #: Mean over rows of the summed squared error of the probabilities.
    brier: float
    #: Expected calibration error of the most probable class.
    ece: float


class Interval(TypedDict):
    """Bootstrap intervals (low, high) of accuracy and macro-F1."""

    accuracy: tuple[float, float]
    macro_f1: tuple[float, float]


def classification_metrics(y: IntArray, proba: FloatArray, pred: IntArray | None = None) -> Scores:
    """Accuracy, macro-F1, balanced accuracy, log loss, Brier score and ECE.

    Parameters
    ----------
    y
        True class indices (0 cool, 1 neutral, 2 warm).
    proba
        Predicted class probabilities (rows × 3).
    pred
        Predicted classes (the decision rule); default ``proba.argmax(axis=1)``.

    Returns
    -------
    Scores
        ``accuracy``, ``macro_f1``, ``balanced_accuracy``, ``log_loss`` [nats], ``brier``
        (mean over rows of the summed squared error), ``ece`` and ``rows``.
    """
    pred = proba.argmax(axis=1) if pred is None else pred
    cm = confusion(y, pred)
    support = cm.sum(axis=1)
    recall = np.divide(np.diag(cm), support, out=np.zeros(N_CLASSES), where=support > 0)
    onehot = np.eye(N_CLASSES)[y]
    return {
        "rows": float(len(y)),
        "accuracy": float(np.trace(cm) / max(len(y), 1)),
        "macro_f1": _f1_from_confusion(cm),
        "balanced_accuracy": float(recall[support > 0].mean()),
        "log_loss": float(log_losses(y, proba).mean()),
        "brier": float(((proba - onehot) ** 2).sum(axis=1).mean()),
        "ece": expected_calibration_error(y, proba),
    }


def paired_differences(
    y: IntArray,
    first: tuple[FloatArray, IntArray],
    second: tuple[FloatArray, IntArray],
    groups: npt.NDArray[np.int64],
    *,
    reps: int,
    seed: int,
) -> dict[str, FloatArray]:
    """Bootstrap distribution of ``first`` − ``second`` on the same rows, resampling clusters.

    Parameters
    ----------
    y
        True classes of the rows both answered.
    first, second
        Each answer's probabilities (rows × 3) and decisions (class indices).
    groups
        Cluster (building) of every row: one draw resamples both answers' rows alike.
    reps, seed
        Replicates and seed.

    Returns
    -------
    dict
        ``macro_f1`` and ``log_loss`` [nats]: ``reps`` differences each (positive macro-F1 and
        negative log loss favour ``first``).
    """
    inverse, draws = cluster_draws(groups.astype(np.int64), reps, seed)
    clusters = draws.shape[1]
    out: dict[str, list[FloatArray]] = {"macro_f1": [], "log_loss": []}
    for proba, decision in (first, second):
        cm = np.zeros((clusters, N_CLASSES * N_CLASSES))
        np.add.at(cm, (inverse, y * N_CLASSES + decision), 1.0)
        out["macro_f1"].append(
            macro_f1_from_confusion((draws @ cm).reshape(reps, N_CLASSES, N_CLASSES))
        )
        out["log_loss"].append(replicate_means(log_losses(y, proba), inverse, draws))
    return {k: v[0] - v[1] for k, v in out.items()}


def bootstrap_interval(
    y: IntArray,
    pred: IntArray,
    groups: npt.NDArray[np.int64] | None = None,
    *,
    reps: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Bootstrap confidence intervals of accuracy and macro-F1.

    Parameters
    ----------
    y, pred
        True and predicted class indices.
    groups
        Cluster ids (buildings): resample whole clusters, as votes in one building are not
        independent. ``None`` resamples rows.
    reps
        Bootstrap replicates.
    seed
        Random seed.
    level
        Coverage of the interval.

    Returns
    -------
    Interval
        ``{"accuracy": (low, high), "macro_f1": (low, high)}``.
    """
    inverse, draws = cluster_draws(np.arange(len(y)) if groups is None else groups, reps, seed)
    # per-cluster confusion counts, so one replicate is a weighted sum over clusters
    per_cluster = np.zeros((draws.shape[1], N_CLASSES * N_CLASSES))
    np.add.at(per_cluster, (inverse, y * N_CLASSES + pred), 1.0)
    cms = (draws @ per_cluster).reshape(reps, N_CLASSES, N_CLASSES)
    acc = np.trace(cms, axis1=1, axis2=2) / np.maximum(cms.sum(axis=(1, 2)), 1)
    f1 = macro_f1_from_confusion(cms)
    tail = (1 - level) / 2 * 100

    def bounds(values: FloatArray) -> tuple[float, float]:
        low, high = np.percentile(values, [tail, 100 - tail]).tolist()
        return float(low), float(high)

    return {"accuracy": bounds(acc), "macro_f1": bounds(f1)}


def reliability(y: IntArray, proba: FloatArray, bins: int = 10) -> dict[str, list[float]]:
    """Per-class reliability curve: mean predicted probability vs observed frequency per bin."""
    out: dict[str, list[float]] = {}
    edges = np.linspace(0, 1, bins + 1)
    for k in range(N_CLASSES):
        which = np.minimum(np.digitize(proba[:, k], edges) - 1, bins - 1)
        count = np.bincount(which, minlength=bins)
        mean_p = np.bincount(which, proba[:, k], minlength=bins)
        observed = np.bincount(which, (y == k).astype(float), minlength=bins)
        keep = count > 0
        out[f"predicted_{k}"] = (mean_p[keep] / count[keep]).tolist()
        out[f"observed_{k}"] = (observed[keep] / count[keep]).tolist()
        out[f"count_{k}"] = count[keep].astype(float).tolist()
    return out
