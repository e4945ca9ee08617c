"""How often the model's answers are right, read from how sure it was.

Confidence-based performance estimation (the live monitor, :mod:`conforto._monitor.performance`,
as NannyML's CBPE) reads a row's chance of being right from the probability of the class it
was answered with: the expected accuracy is the mean of those probabilities, and the expected
confusion counts (the probability mass of each true class among the rows answered ``k``) give
an expected macro-F1. The softmax
temperature is fitted for the log loss of all three classes, and the decision rule often
answers a class other than the most probable one, so the answered class's probability is not
quite the chance of being right (on the dev data the estimate fell 0.014 short of the realised
accuracy). So, as NannyML's CBPE calibrates on its reference data, training fits on the
building-grouped out-of-fold predictions a logistic model of *the answer was right* on the
logit of the answered class's probability, with an intercept per answered class, stored as
``confidence.json``. Applying it needs only NumPy.

Offsets per climate were tried and left out: cross-fitted on the out-of-fold predictions they
seemed to help, but on buildings the model never saw (a model trained on 80 % of the buildings,
judged on the other 20 %, two draws) they did not; the climates' differences are mostly those
of their few buildings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

from conforto._scoring.scores import N_CLASSES, macro_f1_from_confusion
from conforto.errors import DataError

#: The artifact file.
CONFIDENCE = "confidence.json"
#: Probabilities are clipped this far from 0 and 1 before their logit.
_EPS = 1e-6

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class Expected(TypedDict):
    """Accuracy and macro-F1 (fractions, 0 to 1)."""

    accuracy: float
    macro_f1: float


def expected_metrics(proba: FloatArray, decision: IntArray) -> Expected:
    """Accuracy and macro-F1 expected from calibrated probabilities, without labels.

    Parameters
    ----------
    proba
        Class probabilities (rows × 3).
    decision
        The class each row was answered with (the model's decision rule).

    Returns
    -------
    Expected
        ``accuracy``: mean probability of the answered class; ``macro_f1``: macro-F1 of the
        expected confusion counts.

    Examples
    --------
    >>> p = np.array([[0.8, 0.2, 0.0], [0.1, 0.6, 0.3]])
    >>> expected_metrics(p, np.array([0, 1]))["accuracy"]
    0.7
    """
    n = len(decision)
    expected = np.zeros((3, 3))
    np.add.at(expected.T, decision, proba)  # row i: true class, column j: answered class
    return {
        "accuracy": float(proba[np.arange(n), decision].mean()) if n else float("nan"),
        "macro_f1": float(macro_f1_from_confusion(expected)) if n else float("nan"),
    }


def _features(proba: FloatArray, decision: IntArray) -> FloatArray:
    """The logit of the answered class's probability, then the answered class one-hot."""
    p = np.clip(proba[np.arange(len(decision)), decision], _EPS, 1 - _EPS)
    return np.column_stack([np.log(p / (1 - p)), np.eye(N_CLASSES)[decision]])


@dataclass(frozen=True)
class ConfidenceCalibration:
    """A stored calibration of the answered class's probability.

    Attributes
    ----------
    slope
        Coefficient of the logit of the answered class's probability.
    intercepts
        Intercept per answered class (cool, neutral, warm).
    rows
        Calibration rows (out-of-fold votes).
    """

    slope: float
    intercepts: tuple[float, ...]
    rows: int = 0

    def __post_init__(self) -> None:
        """Refuse a calibration without one intercept per class."""
        if len(self.intercepts) != N_CLASSES:
            raise ValueError(f"{len(self.intercepts)} intercepts; one per class ({N_CLASSES})")

    def right(self, proba: FloatArray, decision: IntArray) -> FloatArray:
        """Each row's probability that its answer is right.

        Parameters
        ----------
        proba
            The model's class probabilities (rows × 3).
        decision
            The class each row was answered with.

        Returns
        -------
        numpy.ndarray
            Probabilities in (0, 1), one per row.
        """
        z = _features(proba, decision) @ np.array([self.slope, *self.intercepts])
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)

    def recalibrated(self, proba: FloatArray, decision: IntArray) -> FloatArray:
        """The probabilities with the answered class's replaced by :meth:`right`, the rest of
        the mass shared among the other classes as the model shared it (evenly where it gave
        them none).
        """
        n = np.arange(len(decision))
        right = self.right(proba, decision)
        rest = 1.0 - proba[n, decision]
        share = np.where(rest[:, None] > 0, proba / np.where(rest > 0, rest, 1.0)[:, None], 0.5)
        out = share * (1.0 - right)[:, None]
        out[n, decision] = right
        return np.asarray(out, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``confidence.json``)."""
        return {
            "model": "logit(P(right)) = slope * logit(p_answered) + intercept[answered]",
            "slope": self.slope,
            "intercepts": list(self.intercepts),
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConfidenceCalibration:
        """Read :meth:`to_dict`'s form."""
        return cls(
            float(data["slope"]), tuple(float(v) for v in data["intercepts"]), int(data["rows"])
        )


def fit_confidence(proba: FloatArray, y: IntArray, decision: IntArray) -> ConfidenceCalibration:
    """Fit the calibration on labelled (out-of-fold) predictions.

    Parameters
    ----------
    proba, y, decision
        Probabilities (rows × 3), the classes voted and the classes answered.

    Raises
    ------
    DataError
        When the answers are all right or all wrong (nothing to calibrate on).
    """
    from sklearn.linear_model import LogisticRegression

    right = y == decision
    if right.all() or not right.any():
        raise DataError("cannot calibrate confidence: the answers are all right or all wrong")
    fit = LogisticRegression(C=np.inf, fit_intercept=False, max_iter=1000)  # no penalty
    coef = fit.fit(_features(proba, decision), right).coef_[0]
    return ConfidenceCalibration(float(coef[0]), tuple(float(v) for v in coef[1:]), len(y))
