"""Training: LightGBM tuned and calibrated inside building-grouped folds.

For each outer fold (grouped by building) a bounded Optuna search tunes the booster with inner
building-grouped folds of the *training* buildings; the inner out-of-fold predictions of the
best trial fit the softmax temperature (calibration) and the class-probability weights that
maximise macro-F1. The evaluation buildings are never seen by tuning. The final model repeats
the procedure on all the data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from rich.progress import Progress

from conforto._model.inputs import FeatureSpec, build_spec, encode, prepare
from conforto._physics.features import comfort_features
from conforto._scoring import oof
from conforto._scoring.scores import N_CLASSES
from conforto._training.adaptation import adapt_out_of_fold
from conforto._training.baselines import ProbabilisticPMV, logistic_candidate, majority_proba
from conforto._training.booster import FittedBooster, TrainConfig, fit_booster, group_folds
from conforto._training.evaluate import summarise
from conforto._training.heads import SensationFit, add_dissatisfied, train_heads
from conforto._training.random_split import random_split_metrics
from conforto._training.summary import FoldFit, MetricsFile
from conforto._uncertainty.calibration import calibrate_frame, coverage_report
from conforto._uncertainty.estimate import cross_fitted, estimate_report, fit_frame
from conforto.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from conforto._adaptation.site import AdaptationSettings
    from conforto._model.heads import Heads
    from conforto._model.manifest import BoosterParams
    from conforto._uncertainty.confidence import ConfidenceCalibration
    from conforto._uncertainty.sets import ConformalSets

__all__ = ["CrossValidation", "TrainConfig", "TrainingResult", "cross_validate", "train_model"]
log = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass
class CrossValidation:
    """Out-of-fold predictions, what was fitted per fold, and each fold's tuned parameters and
    rounds (the starting point of the occupant-response heads).
    """

    predictions: pd.DataFrame
    folds: list[FoldFit]
    tuned: list[tuple[BoosterParams, int]]
    fold_of: IntArray


def cross_validate(
    rows: pd.DataFrame,
    matrix: FloatArray,
    y: IntArray,
    groups: IntArray,
    spec: FeatureSpec,
    config: TrainConfig,
    progress: Progress | None = None,
    folds: list[tuple[IntArray, IntArray]] | None = None,
) -> CrossValidation:
    """Building-grouped K-fold CV of the whole procedure, with baselines on the same rows.

    Parameters
    ----------
    folds
        ``(train, test)`` row indices per fold; default: ``config.folds`` building-grouped
        folds drawn with ``config.fold_seed``.

    Returns
    -------
    CrossValidation
        ``predictions`` (the predictions frame) has one row per training row: fold, label,
        model probabilities and decision, majority and probabilistic-PMV probabilities, PMV,
        building and slice columns.
    """
    n = len(y)
    proba = np.full((n, N_CLASSES), np.nan)
    decision = np.full(n, -1, dtype=np.int64)
    majority = np.full((n, N_CLASSES), np.nan)
    prob_pmv = np.full((n, N_CLASSES), np.nan)
    logistic = np.full((n, N_CLASSES), np.nan)
    numeric_idx = [i for i, f in enumerate(spec.features) if f.kind != "categorical"]
    fold_of = np.full(n, -1, dtype=np.int64)
    pmv = comfort_features(rows, ["pmv_iso"])["pmv_iso"].to_numpy()
    folds_info, tuned = [], []
    folds = folds or group_folds(groups, config.folds, config.fold_seed)
    task = (
        progress.add_task("cross-validation", total=len(folds) * (config.search_trials + 1))
        if progress
        else None
    )
    for k, (tr, te) in enumerate(folds):
        advance = (
            (lambda: progress.advance(task)) if progress is not None and task is not None else None
        )
        fitted = fit_booster(
            matrix[tr], y[tr], groups[tr], spec, config, seed=config.seed + k, on_trial=advance
        )
        proba[te] = fitted.proba(matrix[te])
        decision[te] = (proba[te] * fitted.class_weights).argmax(axis=1)
        majority[te] = majority_proba(y[tr], len(te))
        prob_pmv[te] = ProbabilisticPMV().fit(pmv[tr], y[tr]).predict_proba(pmv[te])
        candidate = logistic_candidate(numeric_idx, spec.categorical_indices).fit(matrix[tr], y[tr])
        logistic[te] = candidate.predict_proba(matrix[te])
        fold_of[te] = k
        tuned.append((fitted.params, fitted.rounds))
        folds_info.append(
            FoldFit(
                fold=k,
                buildings=int(np.unique(groups[te]).size),
                rows=int(te.size),
                rounds=fitted.rounds,
                temperature=fitted.temperature,
                class_weights=fitted.class_weights.tolist(),
            )
        )
        if advance is not None:
            advance()
    scores = {"p": proba, "majority": majority, "pmvprob": prob_pmv, "logistic": logistic}
    frame = oof.build(
        rows, fold=fold_of, groups=groups, y=y, decision=decision, pmv=pmv, scores=scores
    )
    return CrossValidation(frame, folds_info, tuned, fold_of)


def refit_out_of_fold(
    frame: pd.DataFrame, config: TrainConfig, fold_of: IntArray, *, progress: bool = True
) -> pd.DataFrame:
    """Cross-validate ``config`` on given folds: another model's procedure on this model's folds.

    Parameters
    ----------
    frame
        The training data the folds were drawn on.
    config
        Training settings to refit (for example the champion's).
    fold_of
        Outer fold of every row of ``prepare(frame)`` (an ``oof.parquet``'s ``fold`` column).

    Returns
    -------
    pandas.DataFrame
        Out-of-fold predictions in ``oof.parquet``'s shape.

    Raises
    ------
    DataError
        When ``fold_of`` does not have one entry per training row.
    """
    rows, y, groups = prepare(frame)
    if len(fold_of) != len(y):
        raise DataError(
            f"the folds cover {len(fold_of)} rows but the data has {len(y)} training rows: "
            "they come from other data."
        )
    spec = build_spec(rows)
    matrix = encode(rows, spec)
    folds = [
        (np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in np.unique(fold_of)
    ]
    with Progress(disable=not progress, transient=True) as bar:
        return cross_validate(rows, matrix, y, groups, spec, config, bar, folds).predictions


@dataclass
class TrainingResult:
    """A trained model before it is written: the final booster and how it was judged.

    Attributes
    ----------
    rows
        The training rows (with a vote and a building).
    y, groups
        Their classes and buildings.
    spec
        The features.
    final
        The booster fitted on all rows.
    cv
        Building-grouped cross-validation of the whole procedure.
    metrics
        ``cv`` (see :func:`conforto._training.evaluate.summarise`), ``random_split`` and ``folds``.
    probabilistic_pmv
        The PMV baseline fitted on all rows.
    config
        The training settings.
    conformal
        The prediction sets' calibration, on all the out-of-fold predictions.
    confidence
        The calibration the performance estimate reads (:mod:`conforto._uncertainty.confidence`), on
        the same predictions.
    heads
        The occupant-response heads (:mod:`conforto._model.heads`); ``None`` when the data lacks the
        occupants' answers.
    adaptation
        How the model's answers adapt to a site's earlier votes (its strength chosen by the
        replay of the out-of-fold predictions).
    """

    rows: pd.DataFrame
    y: IntArray
    groups: IntArray
    spec: FeatureSpec
    final: FittedBooster
    cv: CrossValidation
    metrics: MetricsFile
    probabilistic_pmv: ProbabilisticPMV
    config: TrainConfig
    conformal: ConformalSets
    confidence: ConfidenceCalibration
    heads: Heads | None
    adaptation: AdaptationSettings


def train_model(
    frame: pd.DataFrame, *, config: TrainConfig | None = None, progress: bool = True
) -> TrainingResult:
    """Cross-validate the training procedure by building, then fit the final model.

    Parameters
    ----------
    frame
        Joined, canonical training data (see :func:`conforto._data.load.load_dataset`).
    config
        Training settings; defaults to :class:`TrainConfig`.
    progress
        Show a progress bar.

    Returns
    -------
    TrainingResult
        Everything :func:`conforto._training.save.write_model` writes into a model directory.
    """
    config = config or TrainConfig()
    rows, y, groups = prepare(frame)
    spec = build_spec(rows)
    matrix = encode(rows, spec)
    with Progress(disable=not progress, transient=True) as bar:
        cv = cross_validate(rows, matrix, y, groups, spec, config, progress=bar)
        task = bar.add_task("final model", total=config.search_trials + 1)
        final = fit_booster(
            matrix, y, groups, spec, config, seed=config.seed, on_trial=lambda: bar.advance(task)
        )
        bar.advance(task)
        bar.add_task("occupant responses", total=None)
        fit = SensationFit(
            matrix, rows, groups, spec, cv.fold_of, cv.tuned, (final.params, final.rounds)
        )
        heads, heads_report, heads_cv = train_heads(fit, seed=config.seed)
    add_dissatisfied(cv.predictions, heads_cv)  # its answers are adapted in the replay too
    summary = summarise(cv.predictions, seed=config.seed)
    if isinstance(heads_report, str):
        summary["heads_skipped"] = heads_report
    else:
        summary["heads"] = heads_report
    summary["coverage"] = coverage_report(cv.predictions, by=config.conformal_by)
    summary["estimate"] = estimate_report(cv.predictions, cross_fitted(cv.predictions))
    adaptation, summary["adaptation"] = adapt_out_of_fold(
        cv.predictions,
        [fold["class_weights"] for fold in cv.folds],
        config.adaptation,
        config.adaptation_strengths,
        conformal_by=config.conformal_by,
        seed=config.seed,
    )
    metrics = MetricsFile(
        cv=summary,
        random_split=random_split_metrics(rows, matrix, y, final.params, spec, config),
        folds=cv.folds,
    )
    if summary["selected"] != "lightgbm":
        log.warning(
            "the %s candidate scored a higher grouped macro-F1 than LightGBM; the "
            "artifact format ships boosters, so this model is still LightGBM",
            summary["selected"],
        )
    prob_pmv = ProbabilisticPMV().fit(cv.predictions["pmv"].to_numpy(), y)
    conformal = calibrate_frame(cv.predictions, by=config.conformal_by)
    return TrainingResult(
        rows,
        y,
        groups,
        spec,
        final,
        cv,
        metrics,
        prob_pmv,
        config,
        conformal,
        fit_frame(cv.predictions),
        heads,
        adaptation,
    )
