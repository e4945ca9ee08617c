"""Live model performance: estimated from the probabilities before any vote, realised after.

The model's probabilities are calibrated, so they estimate its own accuracy with no label at
all (confidence-based performance estimation, as NannyML's CBPE does:
:mod:`conforto._uncertainty.confidence`). Occupants' votes, when they come, give the realised
figures, with bootstrap intervals over buildings (or sites).

A model's ``confidence.json`` (:mod:`conforto._uncertainty.confidence`) recalibrates the answered
class's probability into the chance of being right before the estimate reads it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from conforto._data.load import utc_timestamps
from conforto._data.target import CLASS_NAMES, sensation_class
from conforto._monitor.thresholds import MonitorConfig
from conforto._monitor.window import (
    Described,
    FileSource,
    LogSource,
    Source,
    quiet_reason,
    read_votes,
)
from conforto._scoring.scores import bootstrap_interval, macro_f1
from conforto._uncertainty.confidence import CONFIDENCE, Expected, expected_metrics
from conforto.errors import DataError, QuietWindow

if TYPE_CHECKING:
    from collections.abc import Callable

    from conforto._model.artifact import ThermalModel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
PROBA = [f"p_{name}" for name in CLASS_NAMES]
#: The figures judged against the model's validation.
JUDGED: tuple[Literal["accuracy", "macro_f1"], ...] = ("accuracy", "macro_f1")


@dataclass(frozen=True)
class Realised:
    """Accuracy and macro-F1 on the voted rows (fractions, 0 to 1), each with its 95 %
    bootstrap interval over buildings or sites.
    """

    accuracy: float
    macro_f1: float
    accuracy_ci: tuple[float, float]
    macro_f1_ci: tuple[float, float]


def realised_metrics(y: IntArray, decision: IntArray, groups: npt.NDArray[Any]) -> Realised:
    """Accuracy and macro-F1 on voted rows, with 95 % bootstrap intervals over ``groups``."""
    codes = pd.factorize(pd.Series(groups).astype(str))[0].astype(np.int64)
    ci = bootstrap_interval(y, decision, codes, reps=500)
    low, high = ci["accuracy"]
    f1_low, f1_high = ci["macro_f1"]
    return Realised(
        float((y == decision).mean()),
        macro_f1(y, decision),
        (float(low), float(high)),
        (float(f1_low), float(f1_high)),
    )


@dataclass(frozen=True)
class PerformanceReport:
    """``performance.json``: the model's estimated, realised and validation figures on a
    window, and the verdict.

    Attributes
    ----------
    model_version
        The version judged.
    source
        Where the window's rows came from (the window's description, free-form JSON).
    rows, labelled_rows
        Predictions in the window, and those with an occupant's vote.
    estimated
        Accuracy and macro-F1 expected from the probabilities, without votes.
    estimator
        How the probabilities were read (as answered, or recalibrated).
    realised
        The figures on the votes; ``None`` with fewer than ``min_votes``.
    validation
        The model's own figures from grouped cross-validation (``accuracy``, ``macro_f1``).
    reasons
        Why the model is degraded; empty when it is not.
    """

    model_version: str
    source: Described
    rows: int
    labelled_rows: int
    estimated: Expected
    estimator: str
    realised: Realised | None
    validation: dict[str, float]
    reasons: tuple[str, ...] = ()

    @property
    def degraded(self) -> bool:
        """Whether a figure fell below its validation value by more than the tolerance."""
        return bool(self.reasons)

    def to_json(self) -> dict[str, Any]:
        """``performance.json``'s content."""
        return {**asdict(self), "degraded": self.degraded}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PerformanceReport:
        """A report read back from :meth:`to_json`'s content."""
        realised = data["realised"]
        return cls(
            model_version=str(data["model_version"]),
            source=data["source"],
            rows=int(data["rows"]),
            labelled_rows=int(data["labelled_rows"]),
            estimated=Expected(
                accuracy=data["estimated"]["accuracy"], macro_f1=data["estimated"]["macro_f1"]
            ),
            estimator=data["estimator"],
            realised=None
            if realised is None
            else Realised(
                realised["accuracy"],
                realised["macro_f1"],
                (realised["accuracy_ci"][0], realised["accuracy_ci"][1]),
                (realised["macro_f1_ci"][0], realised["macro_f1_ci"][1]),
            ),
            validation={k: float(v) for k, v in data["validation"].items()},
            reasons=tuple(data["reasons"]),
        )


@dataclass
class Scored:
    """The window's rows as the model answered them, and the votes that came."""

    proba: FloatArray  # what the estimate reads (see recalibrate)
    decision: IntArray
    vote: FloatArray  # the class voted, NaN without a vote
    groups: npt.NDArray[Any]  # building or site; a day without either
    when: pd.Series  # when the row was answered (NaT when unknown)
    source: Described
    estimator: str = "as answered"

    @property
    def labelled(self) -> npt.NDArray[np.bool_]:
        """Rows with a vote."""
        return np.asarray(~np.isnan(self.vote))


def _groups(frame: pd.DataFrame, when: pd.Series) -> npt.NDArray[Any]:
    """Buildings (or sites) where known, else one group per day."""
    day = when.dt.strftime("day %Y-%m-%d").fillna("day unknown")
    for column in ("building_id", "site"):
        if column in frame.columns:
            return np.asarray(frame[column].astype(object).where(frame[column].notna(), day))
    return np.asarray(day)


def recalibrate(model: ThermalModel, scored: Scored) -> Scored:
    """The rows with the probabilities the model's ``confidence.json`` gives them."""
    return replace(
        scored,
        proba=model.confidence.recalibrated(scored.proba, scored.decision),
        estimator=f"recalibrated by {CONFIDENCE}",
    )


def score_log(source: LogSource, on_chunk: Callable[[int], None] | None = None) -> Scored:
    """The logged answers of a window, joined with their feedback votes."""
    frames = list(source.frames(on_chunk))
    if not frames:
        raise QuietWindow(quiet_reason(source))
    frame = pd.concat(frames, ignore_index=True)
    votes = read_votes(source.url, frame["prediction_id"].tolist())
    voted = frame[["prediction_id"]].merge(votes, how="left", on="prediction_id")
    names = {name: k for k, name in enumerate(CLASS_NAMES)}
    return Scored(
        frame[PROBA].to_numpy(np.float64),
        np.asarray(frame["predicted_class"].map(names), dtype=np.int64),
        sensation_class(voted["thermal_sensation"].to_numpy(np.float64)),
        _groups(frame, frame["created"]),
        frame["created"],
        source.describe(),
    )


def score_file(model: ThermalModel, source: FileSource) -> Scored:
    """A file's rows scored by the model (rows it cannot score are left out), with their
    ``thermal_sensation`` votes when the file has them.
    """
    from conforto._model.predict import score_frame

    frame = next(source.frames())
    table = score_frame(model, frame).to_pandas()
    scored = table["reason"].eq("").to_numpy()
    if not scored.any():
        raise DataError(f"nothing to judge: no row of {source.path} could be scored.")
    frame, table = frame.loc[scored].reset_index(drop=True), table.loc[scored]
    names = {name: k for k, name in enumerate(CLASS_NAMES)}
    vote = frame.get("thermal_sensation", pd.Series(np.nan, index=frame.index))
    when = utc_timestamps(frame.get("timestamp", pd.Series(None, index=frame.index, dtype=object)))
    return Scored(
        table[PROBA].to_numpy(np.float64),
        np.asarray(table["predicted_class"].map(names), dtype=np.int64),
        sensation_class(pd.to_numeric(vote, errors="coerce").to_numpy(np.float64)),
        _groups(frame, when),
        when,
        source.describe(),
    )


def judge(
    model: ThermalModel,
    scored: Scored,
    config: MonitorConfig,
    *,
    model_version: str | None = None,
) -> PerformanceReport:
    """The report on a window: estimated, realised and validation figures, and the verdict.

    The model is ``degraded`` when the realised interval of accuracy or macro-F1 lies wholly
    below the validation figure minus ``realised_tolerance``, or the estimate is more than
    ``estimated_tolerance`` below it.
    """
    labelled = scored.labelled
    estimated = expected_metrics(scored.proba, scored.decision)
    realised = None
    if labelled.sum() >= config.min_votes:
        y = scored.vote[labelled].astype(np.int64)
        realised = realised_metrics(y, scored.decision[labelled], scored.groups[labelled])
    metrics = model.manifest.metrics.model_dump()
    validation: dict[str, float] = {k: metrics[k] for k in JUDGED if k in metrics}
    reasons = []
    for key in (k for k in JUDGED if k in validation):
        reference = validation[key]
        if estimated[key] < reference - config.estimated_tolerance:
            reasons.append(f"estimated {key} {estimated[key]:.3f} < {reference:.3f} − tolerance")
        if realised is not None:
            value, (_, high) = getattr(realised, key), getattr(realised, f"{key}_ci")
            if high < reference - config.realised_tolerance:
                reasons.append(
                    f"realised {key} {value:.3f} (95 % up to {high:.3f}) "
                    f"< {reference:.3f} − tolerance"
                )
    return PerformanceReport(
        model_version=model_version or model.version,
        source=scored.source,
        rows=len(scored.decision),
        labelled_rows=int(labelled.sum()),
        estimated=estimated,
        estimator=scored.estimator,
        realised=realised,
        validation=validation,
        reasons=tuple(reasons),
    )


def check_performance(
    model: ThermalModel,
    current: Source,
    *,
    config: MonitorConfig | None = None,
    model_version: str | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> tuple[PerformanceReport, Scored]:
    """Estimate and measure the model's performance on a window (see the module docstring).

    Raises
    ------
    QuietWindow
        When the prediction log has no prediction in the window.
    DataError
        When no row of a file could be scored.
    """
    if isinstance(current, LogSource):
        scored = score_log(current, on_chunk)
    elif isinstance(current, FileSource):
        scored = score_file(model, current)
    else:
        raise TypeError(f"cannot judge performance on {current!r}")
    scored = recalibrate(model, scored)
    return judge(model, scored, config or MonitorConfig(), model_version=model_version), scored
