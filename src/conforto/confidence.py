"""How often the model's answers are right, read from how sure it was, climate by climate.

Confidence-based performance estimation (:mod:`conforto.monitor.performance`) reads a row's
chance of being right from the probability of the class it was answered with. The softmax
calibration holds over all buildings, not within each climate: on buildings it never saw, the
model is too cautious in some climates and too sure in others, and an estimate of a climate's
accuracy inherits that. So, as NannyML's CBPE calibrates on its reference data, training fits
on the building-grouped out-of-fold predictions a logistic model of *the answer was right* on
the logit of the answered class's probability, the answered class and the row's climate (one
L2-penalised offset per climate; a climate it never saw, or a row without one, gets none),
stored as ``confidence.json``. Applying it needs only NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from conforto import oof
from conforto.errors import DataError
from conforto.metrics import N_CLASSES

#: The artifact file (optional: without it the estimate reads the probabilities as they are).
CONFIDENCE = "confidence.json"
#: Inverse strength of the L2 penalty (scikit-learn's ``C``): the climates' offsets shrink
#: towards none, the more the fewer votes a climate has.
PENALTY = 0.1
#: Probabilities are clipped this far from 0 and 1 before their logit.
_EPS = 1e-6

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Climates = Sequence[str | None] | None


def _logit(p: FloatArray) -> FloatArray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.asarray(np.log(p / (1 - p)), dtype=np.float64)


@dataclass(frozen=True)
class ConfidenceCalibration:
    """A stored calibration of the answered class's probability.

    Attributes
    ----------
    slope
        Coefficient of the logit of the answered class's probability.
    intercepts
        Intercept per answered class (cool, neutral, warm).
    climates
        Offset per climate (in its one spelling).
    rows
        Calibration rows (out-of-fold votes).
    """

    slope: float
    intercepts: tuple[float, ...]
    climates: dict[str, float] = field(default_factory=dict)
    rows: int = 0

    def __post_init__(self) -> None:
        if len(self.intercepts) != N_CLASSES:
            raise ValueError(f"{len(self.intercepts)} intercepts; one per class ({N_CLASSES})")

    def right(self, proba: FloatArray, decision: IntArray, climates: Climates = None) -> FloatArray:
        """Each row's probability that its answer is right.

        Parameters
        ----------
        proba
            The model's class probabilities (rows × 3).
        decision
            The class each row was answered with.
        climates
            Each row's climate (``None`` when unknown); ``None`` when no row has one.

        Returns
        -------
        numpy.ndarray
            Probabilities in (0, 1), one per row.
        """
        z = self.slope * _logit(proba[np.arange(len(decision)), decision])
        z += np.asarray(self.intercepts)[decision]
        if climates is not None:
            z += np.array([self.climates.get(c, 0.0) if c else 0.0 for c in climates])
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)

    def recalibrated(
        self, proba: FloatArray, decision: IntArray, climates: Climates = None
    ) -> FloatArray:
        """The probabilities with the answered class's replaced by :meth:`right`, the rest of
        the mass shared among the other classes as the model shared it (evenly where it gave
        them none)."""
        n = np.arange(len(decision))
        right = self.right(proba, decision, climates)
        rest = 1.0 - proba[n, decision]
        share = np.where(rest[:, None] > 0, proba / np.where(rest > 0, rest, 1.0)[:, None], 0.5)
        out = share * (1.0 - right)[:, None]
        out[n, decision] = right
        return np.asarray(out, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``confidence.json``)."""
        return {
            "model": "logit(P(right)) = slope·logit(p_answered) + intercept[answered] + climate",
            "slope": self.slope,
            "intercepts": list(self.intercepts),
            "climates": self.climates,
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConfidenceCalibration:
        """Read :meth:`to_dict`'s form."""
        return cls(
            float(data["slope"]),
            tuple(float(v) for v in data["intercepts"]),
            {str(k): float(v) for k, v in data["climates"].items()},
            int(data["rows"]),
        )


def fit_confidence(
    proba: FloatArray,
    y: IntArray,
    decision: IntArray,
    climates: Climates = None,
    *,
    penalty: float = PENALTY,
) -> ConfidenceCalibration:
    """Fit the calibration on labelled (out-of-fold) predictions.

    Parameters
    ----------
    proba, y, decision
        Probabilities (rows × 3), the classes voted and the classes answered.
    climates
        Each row's climate (``None`` when unknown).
    penalty
        Inverse L2 strength (scikit-learn's ``C``).

    Raises
    ------
    DataError
        When the answers are all right or all wrong (nothing to calibrate on).
    """
    from sklearn.linear_model import LogisticRegression

    right = y == decision
    if right.all() or not right.any():
        raise DataError("cannot calibrate confidence: the answers are all right or all wrong")
    names = sorted({c for c in climates or () if c})
    index = {c: k for k, c in enumerate(names)}
    x = np.zeros((len(y), 1 + N_CLASSES + len(names)))
    x[:, 0] = _logit(proba[np.arange(len(y)), decision])
    x[np.arange(len(y)), 1 + decision] = 1.0
    for row, c in enumerate(climates or ()):
        if c:
            x[row, 1 + N_CLASSES + index[c]] = 1.0
    fit = LogisticRegression(C=penalty, fit_intercept=False, max_iter=1000).fit(x, right)
    coef = fit.coef_[0]
    return ConfidenceCalibration(
        float(coef[0]),
        tuple(float(v) for v in coef[1 : 1 + N_CLASSES]),
        {c: float(coef[1 + N_CLASSES + k]) for c, k in index.items()},
        len(y),
    )


def fit_frame(pred: pd.DataFrame) -> ConfidenceCalibration:
    """:func:`fit_confidence` on a predictions frame (:mod:`conforto.oof`)."""
    y, decision = oof.labels(pred)
    return fit_confidence(oof.probabilities(pred), y, decision, oof.climates(pred))


def cross_fitted(pred: pd.DataFrame) -> FloatArray:
    """Recalibrated out-of-fold probabilities, each fold's by a calibration fitted on the
    other folds (buildings the calibration never saw, as the model never saw them).

    Raises
    ------
    DataError
        When the frame has fewer than two folds.
    """
    fold, folds = oof.folds(pred, "cross-fitting")
    proba, decision = oof.probabilities(pred), oof.labels(pred)[1]
    out = np.empty_like(proba)
    for k in folds:
        test = fold == k
        calibration = fit_frame(pred[~test])
        out[test] = calibration.recalibrated(proba[test], decision[test], oof.climates(pred[test]))
    return out
