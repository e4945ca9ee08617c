"""Baselines the model must beat: majority class, PMV binned, and a probabilistic PMV.

scikit-learn is imported where a baseline is built (most of a second): the gate and the
commands that only bin PMV do without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from conforto._data.target import sensation_class
from conforto._scoring.scores import N_CLASSES

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def majority_proba(y_train: IntArray, n: int) -> FloatArray:
    """Class frequencies of the training labels, repeated for ``n`` rows."""
    freq = np.bincount(y_train, minlength=N_CLASSES) / max(len(y_train), 1)
    return np.tile(freq, (n, 1))


def pmv_class(pmv: FloatArray) -> IntArray:
    """PMV binned like the votes: cool < -0.5 <= neutral <= 0.5 < warm (NaN stays NaN→-1)."""
    classes = sensation_class(pmv)
    return np.where(np.isnan(classes), -1, classes).astype(np.int64)


def pmv_onehot(pmv: FloatArray) -> FloatArray:
    """PMV's class as a certain probability (for log loss and Brier of binned PMV)."""
    return np.eye(N_CLASSES)[pmv_class(pmv)]


def logistic_candidate(numeric: list[int], categorical: list[int]) -> Any:
    """The scikit-learn candidate: a multinomial logistic regression on the same matrix.

    Numeric columns are median-imputed (with missingness indicators) and scaled; categorical
    codes are one-hot encoded, missing as its own level; classes are balanced.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    encode = ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                    StandardScaler(),
                ),
                numeric,
            ),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value=-1.0, keep_empty_features=True),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            ),
        ]
    )
    return make_pipeline(encode, LogisticRegression(C=1.0, max_iter=1000, class_weight="balanced"))


class ProbabilisticPMV:
    """Class probabilities from PMV alone: a multinomial logistic regression on PMV.

    Fitted on training folds, it is the fairest probabilistic version of the PMV/PPD
    equation: "x % would feel warm" as a function of PMV.
    """

    def fit(self, pmv: FloatArray, y: IntArray) -> ProbabilisticPMV:
        """Fit on rows with a PMV value; returns ``self``."""
        from sklearn.linear_model import LogisticRegression

        ok = np.isfinite(pmv)
        self.estimator_ = LogisticRegression(C=1.0, max_iter=1000)
        self.estimator_.fit(np.column_stack([pmv[ok], pmv[ok] ** 2]), y[ok])
        return self

    def to_dict(self) -> dict[str, list[Any]]:
        """The fitted coefficients, JSON-ready."""
        e = self.estimator_
        return {
            "coef": e.coef_.tolist(),
            "intercept": e.intercept_.tolist(),
            "classes": e.classes_.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, list[Any]]) -> ProbabilisticPMV:
        """Rebuild a fitted baseline from :meth:`to_dict`."""
        from sklearn.linear_model import LogisticRegression

        self = cls()
        self.estimator_ = LogisticRegression()
        self.estimator_.coef_ = np.asarray(data["coef"], dtype=np.float64)
        self.estimator_.intercept_ = np.asarray(data["intercept"], dtype=np.float64)
        self.estimator_.classes_ = np.asarray(data["classes"])
        return self

    def predict_proba(self, pmv: FloatArray) -> FloatArray:
        """Probabilities per class; rows without PMV get NaN."""
        out = np.full((len(pmv), N_CLASSES), np.nan)
        ok = np.isfinite(pmv)
        if ok.any():
            p = self.estimator_.predict_proba(np.column_stack([pmv[ok], pmv[ok] ** 2]))
            full = np.zeros((int(ok.sum()), N_CLASSES))
            full[:, self.estimator_.classes_.astype(int)] = p
            out[ok] = full
        return out
