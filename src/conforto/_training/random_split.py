"""The literature's protocol: random 80/20 splits of rows, for comparison only.

Votes from one building then land on both sides of the split, so the scores are optimistic; the
project's own figures are building-grouped. Reported on all rows and on the subset that Luo et
al. (2020) used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from conforto._scoring.scores import macro_f1
from conforto._training.booster import TrainConfig, lgb_dataset

if TYPE_CHECKING:
    import pandas as pd

    from conforto._model.inputs import FeatureSpec
    from conforto._model.manifest import BoosterParams

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


#: Inputs a row must have to enter the literature's subset of "complete rows" (Luo et al. 2020).
LITERATURE_COMPLETE = ("ta", "tr", "rh", "vel", "met", "clo", "age", "gender")


def _random_split_fit(
    matrix: FloatArray, y: IntArray, params: BoosterParams, spec: FeatureSpec, config: TrainConfig
) -> dict[str, float]:
    import lightgbm as lgb

    rng = np.random.default_rng(config.seed)
    test = rng.random(len(y)) < 0.2
    train_idx = np.flatnonzero(~test)
    valid = rng.random(train_idx.size) < 0.1
    fit_set = lgb_dataset(matrix[train_idx[~valid]], y[train_idx[~valid]], spec)
    valid_set = lgb_dataset(matrix[train_idx[valid]], y[train_idx[valid]], spec, reference=fit_set)
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
    params: BoosterParams,
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
