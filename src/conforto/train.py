"""Training: LightGBM tuned and calibrated inside building-grouped folds.

For each outer fold (grouped by building) a bounded Optuna search tunes the booster with inner
building-grouped folds of the *training* buildings; the inner out-of-fold predictions of the
best trial fit the softmax temperature (calibration) and the class-probability weights that
maximise macro-F1. The evaluation buildings are never seen by tuning. The final model repeats
the procedure on all the data.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from rich.progress import Progress

import conforto
from conforto.artifact import BOOSTER, ThermalModel, save_manifest, softmax
from conforto.baselines import ProbabilisticPMV, logistic_candidate, majority_proba
from conforto.data import fingerprint
from conforto.design import FeatureSpec, build_spec, encode
from conforto.errors import ArtifactError, DataError
from conforto.features import comfort_features
from conforto.fileio import atomic_write_json
from conforto.lineage import code_fingerprint, git_commit, package_versions
from conforto.metrics import N_CLASSES, macro_f1
from conforto.target import CLASSES, sensation_class

log = logging.getLogger(__name__)
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


@dataclass
class FittedBooster:
    """A tuned, calibrated booster and its decision weights."""

    booster: Any
    params: dict[str, Any]
    rounds: int
    temperature: float
    class_weights: FloatArray

    def proba(self, matrix: FloatArray) -> FloatArray:
        """Calibrated probabilities."""
        return softmax(np.asarray(self.booster.predict(matrix, raw_score=True)) / self.temperature)


def prepare(frame: pd.DataFrame) -> tuple[pd.DataFrame, IntArray, IntArray]:
    """Keep rows with a vote and a building; return them, class labels and building groups.

    Raises
    ------
    DataError
        When fewer than two buildings or no votes remain.
    """
    keep = frame["thermal_sensation"].notna() & frame["building_id"].notna()
    rows = frame.loc[keep].reset_index(drop=True)
    if rows["building_id"].nunique() < 2:
        raise DataError("training needs votes from at least two buildings (grouped evaluation).")
    y = sensation_class(rows["thermal_sensation"]).astype(np.int64)
    groups = rows["building_id"].to_numpy(dtype=np.int64)
    return rows, y, groups


def _base_params(config: TrainConfig, seed: int) -> dict[str, Any]:
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


def _dataset(matrix: FloatArray, y: IntArray, spec: FeatureSpec, reference: Any = None) -> Any:
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
        p = softmax(raw / t)
        return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1)).mean())

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
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    inner = _group_folds(groups, config.inner_folds, seed)
    full_set = _dataset(matrix, y, spec)
    base = _base_params(config, seed)
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
    study.enqueue_trial(  # the first guess: at learning rate 0.25 searches settle on 7-9 leaves
        {
            "num_leaves": 11,
            "min_data_in_leaf": 300,
            "feature_fraction": 0.7,
            "lambda_l2": 10.0,
            "cat_smooth": 50.0,
        }
    )
    study.optimize(objective, n_trials=config.search_trials)
    rounds, raw = results[study.best_trial.number]
    temperature = fit_temperature(raw, y)
    weights = fit_class_weights(softmax(raw / temperature), y, config.weight_grid)
    params = {**base, **study.best_params}
    booster = lgb.train(params, full_set, max(rounds, 1))
    return FittedBooster(booster, params, max(rounds, 1), temperature, weights)


def _group_folds(groups: IntArray, folds: int, seed: int) -> list[tuple[IntArray, IntArray]]:
    from sklearn.model_selection import GroupKFold

    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in splitter.split(groups, groups=groups)]


@dataclass
class CrossValidation:
    """Out-of-fold predictions and what was fitted per fold."""

    oof: pd.DataFrame
    folds: list[dict[str, Any]]


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
        ``oof`` has one row per training row: fold, label, model probabilities and decision,
        majority and probabilistic-PMV probabilities, PMV, building and slice columns.
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
    folds_info = []
    folds = folds or _group_folds(groups, config.folds, config.fold_seed)
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
        folds_info.append(
            {
                "fold": k,
                "buildings": int(np.unique(groups[te]).size),
                "rows": int(te.size),
                "rounds": fitted.rounds,
                "temperature": fitted.temperature,
                "class_weights": fitted.class_weights.tolist(),
            }
        )
        if advance is not None:
            advance()
    oof = pd.DataFrame(
        {"fold": fold_of, "building_id": groups, "y": y, "decision": decision, "pmv": pmv}
    )
    for i, c in enumerate(CLASSES):
        oof[f"p_{c.value}"] = proba[:, i]
        oof[f"majority_{c.value}"] = majority[:, i]
        oof[f"pmvprob_{c.value}"] = prob_pmv[:, i]
        oof[f"logistic_{c.value}"] = logistic[:, i]
    for column in ("record_id", "cooling_type", "climate", "season", "building_type"):
        if column in rows.columns:
            oof[column] = rows[column].to_numpy()
    return CrossValidation(oof, folds_info)


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
        return cross_validate(rows, matrix, y, groups, spec, config, bar, folds).oof


#: Inputs a row must have to enter the literature's subset of "complete rows" (Luo et al. 2020).
LITERATURE_COMPLETE = ("ta", "tr", "rh", "vel", "met", "clo", "age", "gender")


def _random_split_fit(
    matrix: FloatArray, y: IntArray, params: dict[str, Any], spec: FeatureSpec, config: TrainConfig
) -> dict[str, float]:
    import lightgbm as lgb

    rng = np.random.default_rng(config.seed)
    test = rng.random(len(y)) < 0.2
    train_idx = np.flatnonzero(~test)
    valid = rng.random(train_idx.size) < 0.1
    fit_set = _dataset(matrix[train_idx[~valid]], y[train_idx[~valid]], spec)
    valid_set = _dataset(matrix[train_idx[valid]], y[train_idx[valid]], spec, reference=fit_set)
    booster = lgb.train(
        params,
        fit_set,
        4 * config.max_rounds,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(config.early_stopping, verbose=False)],
    )
    proba = np.asarray(booster.predict(matrix[test], num_iteration=booster.best_iteration))
    pred = proba.argmax(axis=1)
    return {
        "accuracy": float((pred == y[test]).mean()),
        "macro_f1": macro_f1(y[test], pred),
        "rows": float(test.sum()),
        "rounds": float(booster.best_iteration),
    }


def random_split_metrics(
    rows: pd.DataFrame,
    matrix: FloatArray,
    y: IntArray,
    params: dict[str, Any],
    spec: FeatureSpec,
    config: TrainConfig,
) -> dict[str, dict[str, float]]:
    """The literature's protocol: random 80/20 splits of rows (optimistic: buildings leak).

    Reported twice: on the subset of rows complete in :data:`LITERATURE_COMPLETE` (as Luo et
    al. 2020 did) and on all rows. Row-level splits reward memorising buildings, so the booster
    is given room to do so (more leaves, little regularisation) and its rounds are early-stopped
    on a random tenth of the training rows, as a row-level protocol would tune them.

    Returns
    -------
    dict
        ``{"literature_subset": metrics, "all_rows": metrics}`` with accuracy, macro-F1, rows
        (test rows) and rounds.
    """
    params = {**params, "num_leaves": 127, "min_data_in_leaf": 10, "lambda_l2": 1.0}
    present = [c for c in LITERATURE_COMPLETE if c in rows.columns]
    complete = rows[present].notna().all(axis=1).to_numpy()
    out = {"all_rows": _random_split_fit(matrix, y, params, spec, config)}
    if len(present) == len(LITERATURE_COMPLETE) and complete.sum() >= 100:
        out["literature_subset"] = _random_split_fit(
            matrix[complete], y[complete], params, spec, config
        )
    return out


def train_model(
    frame: pd.DataFrame,
    out: Path,
    *,
    config: TrainConfig | None = None,
    force: bool = False,
    sources: dict[str, str] | None = None,
    progress: bool = True,
) -> ThermalModel:
    """Train, cross-validate and write a complete model directory.

    Parameters
    ----------
    frame
        Joined, canonical training data (see :func:`conforto.data.load_dataset`).
    out
        Model directory to create; written to a temporary folder first, then renamed.
    config
        Training settings; defaults to :class:`TrainConfig`.
    force
        Replace an existing ``out``.
    sources
        Data file paths to record in the lineage.
    progress
        Show a progress bar.

    Returns
    -------
    ThermalModel
        The final model, loaded back from ``out``.

    Raises
    ------
    ArtifactError
        When ``out`` exists and ``force`` is not set.
    """
    from conforto.artifact import load_model
    from conforto.evaluate import summarise, write_evaluation
    from conforto.profile import profile_frame

    config = config or TrainConfig()
    if out.exists() and not force:
        raise ArtifactError(
            f"{out} already exists: choose another --out or pass --force to replace it."
        )
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
    metrics: dict[str, Any] = {"cv": summarise(cv.oof, seed=config.seed)}
    metrics["random_split"] = random_split_metrics(rows, matrix, y, final.params, spec, config)
    metrics["folds"] = cv.folds
    selected = metrics["cv"]["selected"]
    if selected != "lightgbm":
        log.warning(
            "the %s candidate scored a higher grouped macro-F1 than LightGBM; the "
            "artifact format ships boosters, so this model is still LightGBM",
            selected,
        )
    all_pmv = cv.oof["pmv"].to_numpy()
    prob_pmv = ProbabilisticPMV().fit(all_pmv, y)
    importance = dict(
        zip(spec.names, final.booster.feature_importance("gain").tolist(), strict=True)
    )

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        final.booster.save_model(str(tmp / BOOSTER))
        cv.oof.to_parquet(tmp / "oof.parquet", index=False)
        atomic_write_json(tmp / "profile.json", profile_frame(rows))
        manifest = {
            "name": "conforto-thermal-sensation",
            "created": pd.Timestamp.now(tz="UTC").isoformat(),
            "features": spec.to_dict(),
            "classes": [c.value for c in CLASSES],
            "class_weights": final.class_weights.tolist(),
            "calibration": {"method": "temperature", "temperature": final.temperature},
            "baselines": {
                "majority": (np.bincount(y, minlength=N_CLASSES) / len(y)).tolist(),
                "probabilistic_pmv": prob_pmv.to_dict(),
            },
            "booster": {
                "params": final.params,
                "rounds": final.rounds,
                "feature_importance_gain": importance,
            },
            "config": config.model_dump(),
            "seed": config.seed,
            "data": {
                "sha256": fingerprint(frame),
                "rows": len(rows),
                "buildings": int(np.unique(groups).size),
                "sources": dict(sources or {}),
            },
            "versions": package_versions(),
            "lineage": {
                "git_commit": git_commit(),
                "conforto": conforto.__version__,
                "code_sha256": code_fingerprint(),
            },
            "selection": {
                "selected": selected,
                "macro_f1": {k: v["macro_f1"] for k, v in metrics["cv"]["candidates"].items()},
            },
            "metrics": {
                k: metrics["cv"]["model"][k] for k in ("accuracy", "macro_f1", "log_loss", "ece")
            },
        }
        write_evaluation(
            metrics, tmp, manifest=manifest, title="Cross-validation (grouped by building)"
        )
        save_manifest(tmp, manifest)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_model(out)
