"""Training and judging the occupant-response heads (:mod:`conforto._model.heads`).

Each head is a LightGBM booster with the sensation model's tuned parameters and rounds (no
search of its own: training grows by a fraction), cross-validated on the sensation model's
building-grouped folds. Its softmax temperature is cross-fitted: a fold's probabilities use a
temperature fitted on the other folds' out-of-fold scores, the final head one fitted on all of
them. Each head is judged against its physics baseline on the same rows: PPD/100 (ISO 7730) for
``dissatisfied``, a logistic model on PMV for the others, and the base rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

import numpy as np
import numpy.typing as npt

from conforto._data.target import sensation_vote
from conforto._model.heads import (
    SPECS,
    HeadBaselines,
    Heads,
    HeadSpec,
    Logistic,
    calibrated,
    class_scores,
    softmax,
)
from conforto._scoring.scores import cluster_draws, expected_calibration_error, log_losses, macro_f1
from conforto._training.booster import fit_temperature, lgb_dataset

if TYPE_CHECKING:
    import pandas as pd

    from conforto._model.inputs import FeatureSpec
    from conforto._model.manifest import BoosterParams

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BOOTSTRAP_REPS = 200
_ANSWERS = {
    "unacceptable": ("thermal_acceptability", {"acceptable": 0, "unacceptable": 1}),
    "preference": ("thermal_preference", {"cooler": 0, "no change": 1, "warmer": 2}),
}


def targets(rows: pd.DataFrame) -> dict[str, FloatArray]:
    """Each head's class per row (NaN where the occupant did not answer)."""
    vote = sensation_vote(rows["thermal_sensation"])
    out = {"dissatisfied": np.where(np.isnan(vote), np.nan, (np.abs(vote) >= 2).astype(float))}
    for name, (column, codes) in _ANSWERS.items():
        if column not in rows.columns:
            out[name] = np.full(len(rows), np.nan)
            continue
        text = rows[column].astype("string").str.strip().str.lower()
        out[name] = text.map(codes).to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _params(tuned: BoosterParams, spec: HeadSpec) -> BoosterParams:
    params = {k: v for k, v in tuned.items() if k not in ("objective", "num_class")}
    if len(spec.classes) == 2:
        return {**params, "objective": "binary"}
    return {**params, "objective": "multiclass", "num_class": len(spec.classes)}


def _fit(
    matrix: FloatArray, y: IntArray, spec: FeatureSpec, params: BoosterParams, rounds: int
) -> Any:
    import lightgbm as lgb

    return lgb.train(params, lgb_dataset(matrix, y, spec), rounds)


def _raw(booster: Any, matrix: FloatArray) -> FloatArray:
    return np.asarray(booster.predict(matrix, raw_score=True), dtype=np.float64)


@dataclass
class HeadCV:
    """One head's out-of-fold probabilities and its baselines' on the labelled rows (``rows``:
    their positions; ``raw``: the out-of-fold raw scores, empty outside cross-validation).
    """

    rows: IntArray
    y: IntArray
    groups: IntArray
    proba: FloatArray
    baselines: dict[str, FloatArray]
    raw: FloatArray


def fit_baselines(head: HeadSpec, y: IntArray, pmv: FloatArray) -> HeadBaselines:
    """A head's baselines fitted on its answers ``y``: the base rate and, but for
    ``dissatisfied`` (whose baseline is PPD/100), a logistic model on PMV (``coef``,
    ``intercept``; rows without PMV answer the base rate).
    """
    from sklearn.linear_model import LogisticRegression

    out = HeadBaselines(base_rate=(np.bincount(y, minlength=len(head.classes)) / len(y)).tolist())
    if head.name != "dissatisfied":
        known = ~np.isnan(pmv)
        model = LogisticRegression().fit(pmv[known, None], y[known])
        out["pmv_logistic"] = Logistic(
            coef=model.coef_[:, 0].tolist(), intercept=model.intercept_.tolist()
        )
    return out


def apply_baselines(
    head: HeadSpec, fitted: HeadBaselines, pmv: FloatArray, ppd: FloatArray
) -> dict[str, FloatArray]:
    """The baselines' probabilities (rows × classes; NaN rows where PPD is unknown)."""
    out: dict[str, FloatArray] = {}
    rate = np.asarray(fitted.get("base_rate", []), dtype=np.float64)
    if rate.size:
        out["base rate"] = np.tile(rate, (len(pmv), 1))
    if head.name == "dissatisfied":
        p = np.clip(ppd / 100.0, 0.0, 1.0)
        out["PPD/100"] = np.column_stack([1 - p, p])
    elif "pmv_logistic" in fitted:
        coef = np.asarray(fitted["pmv_logistic"]["coef"])
        z = pmv[:, None] * coef + np.asarray(fitted["pmv_logistic"]["intercept"])
        proba = softmax(z) if z.shape[1] > 1 else calibrated(z[:, 0], 1.0)
        proba[np.isnan(pmv)] = rate
        out["logistic on PMV"] = proba
    return out


@dataclass(frozen=True)
class SensationFit:
    """What the heads start from: the sensation model's training data, folds and parameters.

    Attributes
    ----------
    matrix, rows, groups
        The sensation model's training matrix, rows and buildings.
    spec
        Its features.
    fold_of
        Each row's outer fold.
    tuned
        Each fold's tuned parameters and boosting rounds.
    final
        The final model's parameters and rounds.
    """

    matrix: FloatArray
    rows: pd.DataFrame
    groups: IntArray
    spec: FeatureSpec
    fold_of: IntArray
    tuned: list[tuple[BoosterParams, int]]
    final: tuple[BoosterParams, int]


def cross_validate_heads(fit: SensationFit, comfort: pd.DataFrame) -> dict[str, HeadCV]:
    """Every head cross-validated on the sensation model's folds, with its baselines.

    Parameters
    ----------
    fit
        The sensation model's data, folds and each fold's tuned parameters.
    comfort
        ``pmv_iso`` and ``ppd_iso`` [%] of every row (NaN outside ISO 7730's limits).
    """
    matrix, groups, spec, fold_of, tuned = fit.matrix, fit.groups, fit.spec, fit.fold_of, fit.tuned
    labels = targets(fit.rows)
    pmv, ppd = comfort["pmv_iso"].to_numpy(), comfort["ppd_iso"].to_numpy()
    out = {}
    for head in SPECS:
        labelled = np.flatnonzero(~np.isnan(labels[head.name]))
        y = labels[head.name][labelled].astype(np.int64)
        folds = fold_of[labelled]
        width = 1 if len(head.classes) == 2 else len(head.classes)
        raw = np.zeros(len(labelled)) if width == 1 else np.zeros((len(labelled), width))
        baselines: dict[str, FloatArray] = {}
        for k, (params, rounds) in enumerate(tuned):
            test, train = np.flatnonzero(folds == k), np.flatnonzero(folds != k)
            booster = _fit(matrix[labelled[train]], y[train], spec, _params(params, head), rounds)
            raw[test] = _raw(booster, matrix[labelled[test]])
            fitted = fit_baselines(head, y[train], pmv[labelled][train])
            fold_baselines = apply_baselines(head, fitted, pmv[labelled][test], ppd[labelled][test])
            for name, proba in fold_baselines.items():
                baselines.setdefault(name, np.full((len(labelled), len(head.classes)), np.nan))
                baselines[name][test] = proba
        proba = np.zeros((len(labelled), len(head.classes)))
        for k in range(len(tuned)):  # cross-fitted calibration: the other folds' temperature
            test, other = folds == k, folds != k
            proba[test] = calibrated(raw[test], _temperature(raw[other], y[other]))
        out[head.name] = HeadCV(labelled, y, groups[labelled], proba, baselines, raw)
    return out


def _temperature(raw: FloatArray, y: IntArray) -> float:
    return fit_temperature(class_scores(raw), y)


def fit_heads(fit: SensationFit, cv: dict[str, HeadCV], pmv: FloatArray) -> Heads:
    """The final heads on every labelled row (``cv``'s), each calibrated on its out-of-fold
    scores, with their baselines fitted on the same answers (``pmv``: every row's).
    """
    params, rounds = fit.final
    boosters, temperatures, baselines = {}, {}, {}
    for head in SPECS:
        fold = cv[head.name]
        matrix = fit.matrix[fold.rows]
        boosters[head.name] = _fit(matrix, fold.y, fit.spec, _params(params, head), rounds)
        temperatures[head.name] = _temperature(fold.raw, fold.y)
        baselines[head.name] = fit_baselines(head, fold.y, pmv[fold.rows])
    return Heads(boosters, temperatures, baselines)


def evaluate_heads(
    heads: Heads, matrix: FloatArray, rows: pd.DataFrame, groups: IntArray, *, seed: int = 0
) -> dict[str, HeadEvaluation]:
    """The heads on other labelled data (for example unseen buildings), against the baselines
    fitted with them: :func:`heads_report`'s shape, for the heads whose answers the data has.
    """
    from conforto._physics.features import comfort_features

    labels = targets(rows)
    comfort = comfort_features(rows, ["pmv_iso", "ppd_iso"])
    pmv, ppd = comfort["pmv_iso"].to_numpy(), comfort["ppd_iso"].to_numpy()
    predicted = heads.probabilities(matrix, threads=0)
    judged = {}
    for head in SPECS:
        labelled = np.flatnonzero(~np.isnan(labels[head.name]))
        if labelled.size == 0:
            continue
        proba = predicted[head.name]
        fitted = heads.baselines.get(head.name, HeadBaselines())
        judged[head.name] = HeadCV(
            labelled,
            labels[head.name][labelled].astype(np.int64),
            groups[labelled],
            proba[labelled],
            apply_baselines(head, fitted, pmv[labelled], ppd[labelled]),
            np.empty(0),
        )
    return heads_report(judged, seed=seed)


class HeadScores(TypedDict):
    """A head's (or a baseline's) scores, with 95 % intervals over buildings (low, high)."""

    rows: int
    #: Mean negative log-likelihood [nats].
    log_loss: float
    brier: float
    ece: float
    log_loss_ci: list[float]
    brier_ci: list[float]
    ece_ci: list[float]
    #: Of the most probable class; for more than two classes only.
    macro_f1: NotRequired[float]


def scores(y: IntArray, proba: FloatArray, groups: IntArray, *, seed: int = 0) -> HeadScores:
    """Log loss [nats], Brier score and ECE with 95 % bootstrap intervals over buildings.

    Parameters
    ----------
    y
        Class indices.
    proba
        Probabilities (rows × classes).
    groups
        Buildings: whole buildings are resampled.
    seed
        Seed of the bootstrap.

    Returns
    -------
    HeadScores
        ``rows``, ``log_loss``, ``brier`` (binary: mean squared error of P(positive); else summed
        over classes), ``ece`` and each with ``_ci`` (low, high); for more than two classes also
        ``macro_f1`` of the most probable class.
    """
    if proba.shape[1] == 2:  # the usual binary Brier score: the positive class's error
        brier = (proba[:, 1] - y) ** 2
    else:
        brier = ((proba - np.eye(proba.shape[1])[y]) ** 2).sum(axis=1)
    per_row = np.column_stack([log_losses(y, proba), brier])
    inverse, draws = cluster_draws(groups, BOOTSTRAP_REPS, seed)
    per_cluster = np.zeros((draws.shape[1], 3))
    np.add.at(per_cluster, inverse, np.column_stack([per_row, np.ones(len(y))]))
    totals = draws @ per_cluster
    means = totals[:, :2] / totals[:, 2:3]
    ece = [
        expected_calibration_error(y, proba, weights=draws[r][inverse])
        for r in range(min(BOOTSTRAP_REPS, 100))
    ]
    out: HeadScores = {
        "rows": len(y),
        "log_loss": float(per_row[:, 0].mean()),
        "brier": float(per_row[:, 1].mean()),
        "ece": expected_calibration_error(y, proba),
        "log_loss_ci": _interval(means[:, 0]),
        "brier_ci": _interval(means[:, 1]),
        "ece_ci": _interval(np.asarray(ece)),
    }
    if proba.shape[1] > 2:
        out["macro_f1"] = macro_f1(y, proba.argmax(axis=1))
    return out


def _interval(values: FloatArray) -> list[float]:
    return [float(v) for v in np.percentile(values, [2.5, 97.5])]


class Binned(TypedDict):
    """Mean predicted probability and observed rate (and rows) per probability bin."""

    predicted: list[float]
    observed: list[float]
    count: list[float]


class HeadEvaluation(TypedDict):
    """One head against its baselines on the same rows."""

    #: Rows with the head's answer.
    rows: int
    #: Predictor → its scores on the rows it has: ``model``, each baseline, and ``model on
    #: the {baseline} rows`` where a baseline has fewer rows.
    scores: dict[str, HeadScores]
    #: ``dissatisfied`` only: the model's and PPD/100's binned predictions against the
    #: observed share, on the rows with a PPD.
    reliability: NotRequired[dict[str, Binned]]


def heads_report(cv: dict[str, HeadCV], *, seed: int = 0) -> dict[str, HeadEvaluation]:
    """Each head against its baselines on the same rows (head → its evaluation)."""
    out: dict[str, HeadEvaluation] = {}
    for head in SPECS:
        if head.name not in cv:
            continue
        fold = cv[head.name]
        table = {"model": scores(fold.y, fold.proba, fold.groups, seed=seed)}
        for name, proba in fold.baselines.items():
            use = ~np.isnan(proba).any(axis=1)
            table[name] = scores(fold.y[use], proba[use], fold.groups[use], seed=seed)
            if not use.all():
                table[f"model on the {name} rows"] = scores(
                    fold.y[use], fold.proba[use], fold.groups[use], seed=seed
                )
        out[head.name] = HeadEvaluation(rows=len(fold.y), scores=table)
    if "dissatisfied" not in cv:
        return out
    fold = cv["dissatisfied"]
    use = ~np.isnan(fold.baselines["PPD/100"]).any(axis=1)
    out["dissatisfied"]["reliability"] = {
        "model": _binned(fold.y[use], fold.proba[use, 1]),
        "PPD/100": _binned(fold.y[use], fold.baselines["PPD/100"][use, 1]),
    }
    return out


def _binned(y: IntArray, p: FloatArray, bins: int = 10) -> Binned:
    """Mean predicted probability and observed rate in equal-width bins (empty bins left out)."""
    which = np.minimum((p * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    keep = count > 0
    return Binned(
        predicted=(np.bincount(which, p, minlength=bins)[keep] / count[keep]).tolist(),
        observed=(np.bincount(which, y, minlength=bins)[keep] / count[keep]).tolist(),
        count=count[keep].astype(float).tolist(),
    )


#: Fewest answers a head is trained on.
MIN_ROWS = 100


def _missing(labels: dict[str, FloatArray], fold_of: IntArray) -> str | None:
    """Why the heads cannot be trained on these rows (``None`` when they can)."""
    for head in SPECS:
        known = ~np.isnan(labels[head.name])
        if known.sum() < MIN_ROWS:
            return f"{head.name}: {int(known.sum())} answers (at least {MIN_ROWS} needed)"
        for k in np.unique(fold_of):
            present = np.unique(labels[head.name][known & (fold_of != k)])
            if present.size < len(head.classes):
                return f"{head.name}: not every answer occurs outside fold {k}"
    return None


def train_heads(
    fit: SensationFit, *, seed: int = 0
) -> tuple[Heads | None, dict[str, HeadEvaluation] | str, dict[str, HeadCV]]:
    """Cross-validate, judge and fit the heads; none when the data lacks the answers.

    Returns
    -------
    tuple
        The final heads, their report (:func:`heads_report`) and their cross-validation; when
        skipped, ``None``, why, and no cross-validation.
    """
    from conforto._physics.features import comfort_features

    reason = _missing(targets(fit.rows), fit.fold_of)
    if reason is not None:
        return None, reason, {}
    comfort = comfort_features(fit.rows, ["pmv_iso", "ppd_iso"])
    cv = cross_validate_heads(fit, comfort)
    heads = fit_heads(fit, cv, comfort["pmv_iso"].to_numpy())
    return heads, heads_report(cv, seed=seed), cv


def add_dissatisfied(predictions: pd.DataFrame, cv: dict[str, HeadCV]) -> None:
    """Add the dissatisfied head's labels (``dissatisfied``: 1, 0, −1 where none) and its
    out-of-fold probabilities (``p_dissatisfied``, NaN where none) to the cross-validation's
    predictions frame (one row per training row), in place; nothing without the head.
    """
    head = cv.get("dissatisfied")
    if head is None:
        return
    labels, proba = np.full(len(predictions), -1, dtype=np.int64), np.full(len(predictions), np.nan)
    labels[head.rows] = head.y
    proba[head.rows] = head.proba[:, 1]
    predictions["dissatisfied"], predictions["p_dissatisfied"] = labels, proba


#: Each head's physics baseline, the one the gate holds it to.
PHYSICS_BASELINES = {
    "dissatisfied": "PPD/100",
    "unacceptable": "logistic on PMV",
    "preference": "logistic on PMV",
}
