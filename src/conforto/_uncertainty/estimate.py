"""The live performance estimate measured on labelled predictions: the confidence calibration
fitted on a predictions frame, cross-fitted out of fold, and the estimate against the realised.

Frames (pandas) live here; :mod:`conforto._uncertainty.confidence` applies a calibration with
NumPy alone, which the service and the model loader import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

import numpy as np

from conforto._scoring import oof
from conforto._scoring.scores import macro_f1
from conforto._uncertainty.confidence import (
    ConfidenceCalibration,
    Expected,
    FloatArray,
    expected_metrics,
    fit_confidence,
)

if TYPE_CHECKING:
    import pandas as pd


class EstimateReport(TypedDict):
    """The estimate against the realised, on labelled predictions."""

    rows: int
    #: what the votes say
    realised: Expected
    #: estimated from the probabilities as answered
    as_answered: Expected
    #: estimated from the recalibrated probabilities (what the live monitor reports)
    recalibrated: Expected


def fit_frame(pred: pd.DataFrame) -> ConfidenceCalibration:
    """:func:`fit_confidence` on a predictions frame (:mod:`conforto._scoring.oof`)."""
    y, decision = oof.labels(pred)
    return fit_confidence(oof.probabilities(pred), y, decision)


def cross_fitted(pred: pd.DataFrame) -> FloatArray:
    """Recalibrated out-of-fold probabilities, each fold's by a calibration fitted on the
    other folds.

    Raises
    ------
    DataError
        When the frame has fewer than two folds.
    """
    proba, decision = oof.probabilities(pred), oof.labels(pred)[1]
    out = np.empty_like(proba)
    for test, others in oof.held_out(pred, "cross-fitting"):
        out[test] = fit_frame(others).recalibrated(proba[test], decision[test])
    return out


def estimate_report(pred: pd.DataFrame, recalibrated: FloatArray) -> EstimateReport:
    """What the live monitor would estimate on labelled predictions, against what they realised.

    Parameters
    ----------
    pred
        Predictions frame (:mod:`conforto._scoring.oof`).
    recalibrated
        Its probabilities recalibrated (:func:`cross_fitted` out of fold, a stored calibration
        on other data).
    """
    y, decision = oof.labels(pred)
    return {
        "rows": len(y),
        "realised": {"accuracy": float((y == decision).mean()), "macro_f1": macro_f1(y, decision)},
        "as_answered": expected_metrics(oof.probabilities(pred), decision),
        "recalibrated": expected_metrics(recalibrated, decision),
    }
