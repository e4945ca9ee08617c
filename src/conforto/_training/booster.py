"""One LightGBM booster for the task: tuned by a bounded search on building-grouped inner folds,
calibrated (softmax temperature) and given decision weights that maximise macro-F1.

:mod:`conforto._training.train` runs it inside every outer fold and once more on all the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from conforto._adaptation.replay import STRENGTHS
from conforto._adaptation.site import AdaptationSettings
from conforto._model.heads import softmax
from conforto._scoring.scores import N_CLASSES, log_losses, macro_f1

if TYPE_CHECKING:
    from conforto._model.inputs import FeatureSpec
    from conforto._model.manifest import BoosterParams

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class TrainConfig(BaseModel):
    """Training settings (the ``train:`` section of ``configs/pipeline.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 42
    folds: int = Field(5, ge=2, le=20, description="Outer building-grouped folds.")
    fold_seed: int = Field(
        0,
        description="Seed of the outer folds; kept apart from `seed` so that versions trained "
        "with other seeds are compared on the same folds.",
    )
    search_trials: int = Field(4, ge=1, le=200, description="Optuna trials per fit.")
    inner_folds: int = Field(3, ge=2, le=10, description="Inner building-grouped folds for tuning.")
    learning_rate: float = Field(0.25, gt=0, le=0.5)
    max_rounds: int = Field(600, ge=10)
    early_stopping: int = Field(30, ge=5)
    threads: int = Field(2, ge=1)
    weight_grid: list[float] = Field(
        default_factory=lambda: [round(0.7 + 0.1 * i, 1) for i in range(10)],
        description="Candidate decision weights of cool and warm (neutral is 1).",
    )
    conformal_by: Literal["all", "class", "climate"] = Field(
        "all",
        description="How the prediction sets' calibration groups the votes: all together, per "
        "class (each class covered at the level; larger sets) or per climate (each climate "
        "with enough buildings calibrated on its own buildings; on buildings never seen, no "
        "better than all together).",
    )
    adaptation: AdaptationSettings = Field(
        default_factory=AdaptationSettings,
        description="Site adaptation (a site's answers adjusted by its occupants' earlier "
        "votes): cap, fading and terms; its strength is chosen by the replay among "
        "`adaptation_strengths`.",
    )
    adaptation_strengths: tuple[PositiveFloat, ...] = Field(
        STRENGTHS,
        min_length=1,
        description="Candidate strengths of site adaptation [votes], chosen on other folds.",
    )


@dataclass
class FittedBooster:
    """A tuned, calibrated booster and its decision weights."""

    booster: Any
    params: BoosterParams
    rounds: int
    temperature: float
    class_weights: FloatArray

    def proba(self, matrix: FloatArray) -> FloatArray:
        """Calibrated probabilities."""
        return softmax(np.asarray(self.booster.predict(matrix, raw_score=True)) / self.temperature)


def base_params(config: TrainConfig, seed: int) -> BoosterParams:
    """LightGBM's parameters before tuning: multiclass, the config's budget, ``seed``."""
    return {
        "objective": "multiclass",
        "num_class": N_CLASSES,
        "learning_rate": config.learning_rate,
        "max_bin": 63,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "verbose": -1,
        "num_threads": config.threads,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "max_cat_to_onehot": 8,
    }


def lgb_dataset(matrix: FloatArray, y: IntArray, spec: FeatureSpec, reference: Any = None) -> Any:
    """A LightGBM dataset of ``matrix`` and ``y``, its categorical columns declared."""
    import lightgbm as lgb

    return lgb.Dataset(
        matrix,
        y,
        feature_name=spec.names,
        categorical_feature=spec.categorical_indices,
        reference=reference,
        free_raw_data=False,
        params={"max_bin": 63, "feature_pre_filter": False, "verbose": -1},
    )


def fit_temperature(raw: FloatArray, y: IntArray) -> float:
    """Softmax temperature minimising the log loss of ``raw`` scores on labels ``y``."""
    from scipy.optimize import minimize_scalar

    def nll(t: float) -> float:
        return float(log_losses(y, softmax(raw / t)).mean())

    return float(minimize_scalar(nll, bounds=(0.3, 5.0), method="bounded").x)


def fit_class_weights(proba: FloatArray, y: IntArray, grid: list[float]) -> FloatArray:
    """Decision weights (cool, 1, warm) maximising macro-F1 of ``argmax(proba * w)``."""
    best, best_w = -1.0, np.ones(N_CLASSES)
    for a in grid:
        for b in grid:
            w = np.array([a, 1.0, b])
            score = macro_f1(y, (proba * w).argmax(axis=1))
            if score > best + 1e-12:
                best, best_w = score, w
    return best_w


def fit_booster(
    matrix: FloatArray,
    y: IntArray,
    groups: IntArray,
    spec: FeatureSpec,
    config: TrainConfig,
    *,
    seed: int,
    on_trial: Any = None,
) -> FittedBooster:
    """Tune, calibrate and fit one booster on ``matrix`` (all of it is training data).

    Parameters
    ----------
    matrix, y, groups
        Encoded features, class labels, building ids.
    spec
        Feature list (names and categorical columns).
    config
        Search budget and fixed parameters.
    seed
        Seed for the split, the sampler and LightGBM.
    on_trial
        Called with no argument after each search trial (progress display).

    Returns
    -------
    FittedBooster
        Booster refitted on all rows with the best parameters and number of rounds.
    """
    import lightgbm as lgb

    inner = group_folds(groups, config.inner_folds, seed)
    full_set = lgb_dataset(matrix, y, spec)
    base = base_params(config, seed)
    best, rounds, raw = _search(matrix, y, full_set, inner, base, config, seed, on_trial)
    temperature = fit_temperature(raw, y)
    weights = fit_class_weights(softmax(raw / temperature), y, config.weight_grid)
    params = {**base, **best}
    booster = lgb.train(params, full_set, max(rounds, 1))
    return FittedBooster(booster, params, max(rounds, 1), temperature, weights)


#: The search's first guess: at learning rate 0.25 searches settle on 7-9 leaves.
FIRST_GUESS = {
    "num_leaves": 11,
    "min_data_in_leaf": 300,
    "feature_fraction": 0.7,
    "lambda_l2": 10.0,
    "cat_smooth": 50.0,
}


def _search(
    matrix: FloatArray,
    y: IntArray,
    full_set: Any,
    inner: list[tuple[IntArray, IntArray]],
    base: BoosterParams,
    config: TrainConfig,
    seed: int,
    on_trial: Any,
) -> tuple[BoosterParams, int, FloatArray]:
    """Optuna's bounded search over the inner folds: the best parameters, their rounds and
    their inner out-of-fold raw scores.
    """
    import lightgbm as lgb
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results: dict[int, tuple[int, FloatArray]] = {}

    def objective(trial: optuna.Trial) -> float:
        params = {
            **base,
            "num_leaves": trial.suggest_int("num_leaves", 7, 63, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 40, 800, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 0.1, 50.0, log=True),
            "cat_smooth": trial.suggest_float("cat_smooth", 5.0, 200.0, log=True),
        }
        history: dict[str, Any] = lgb.cv(
            params,
            full_set,
            config.max_rounds,
            folds=inner,
            stratified=False,
            callbacks=[lgb.early_stopping(config.early_stopping, verbose=False)],
            return_cvbooster=True,
        )
        rounds = len(history["valid multi_logloss-mean"])
        raw = np.zeros((len(y), N_CLASSES))
        for booster, (_, hold) in zip(history["cvbooster"].boosters, inner, strict=True):
            raw[hold] = booster.predict(matrix[hold], raw_score=True, num_iteration=rounds)
        results[trial.number] = (rounds, raw)
        if on_trial is not None:
            on_trial()
        return float(history["valid multi_logloss-mean"][-1])

    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(4, config.search_trials))
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.enqueue_trial(FIRST_GUESS)
    study.optimize(objective, n_trials=config.search_trials)
    rounds, raw = results[study.best_trial.number]
    return dict(study.best_params), rounds, raw


def group_folds(groups: IntArray, folds: int, seed: int) -> list[tuple[IntArray, IntArray]]:
    """``folds`` (train, test) row positions with no building on both sides."""
    from sklearn.model_selection import GroupKFold

    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in splitter.split(groups, groups=groups)]
