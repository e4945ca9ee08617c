"""Live model performance: estimated from the probabilities before any vote, realised after.

The model's probabilities are calibrated, so they estimate its own accuracy with no label at
all (confidence-based performance estimation, as NannyML's CBPE does:
:mod:`conforto.uncertainty.confidence`). Occupants' votes, when they come, give the realised
figures, with bootstrap intervals over buildings (or sites).

A model's ``confidence.json`` (:mod:`conforto.uncertainty.confidence`) recalibrates the answered
class's probability into the chance of being right before the estimate reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from conforto.data.target import CLASS_NAMES, sensation_class
from conforto.errors import DataError
from conforto.fileio import atomic_write_json, atomic_write_text
from conforto.monitor.thresholds import MonitorConfig
from conforto.monitor.window import FileSource, LogSource, Source, read_votes
from conforto.notify import Message, fields, header, section
from conforto.reports import figure_uri, new_figure, render
from conforto.scoring.scores import bootstrap_interval, confusion, macro_f1
from conforto.uncertainty.confidence import CONFIDENCE, expected_metrics

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conforto.model.artifact import ThermalModel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
PROBA = [f"p_{name}" for name in CLASS_NAMES]
#: The figures judged against the model's validation.
JUDGED: tuple[Literal["accuracy", "macro_f1"], ...] = ("accuracy", "macro_f1")


def realised_metrics(y: IntArray, decision: IntArray, groups: npt.NDArray[Any]) -> dict[str, Any]:
    """Accuracy and macro-F1 on voted rows, with 95 % bootstrap intervals over ``groups``."""
    codes = pd.factorize(pd.Series(groups).astype(str))[0].astype(np.int64)
    ci = bootstrap_interval(y, decision, codes, reps=500)
    return {
        "accuracy": float((y == decision).mean()),
        "macro_f1": macro_f1(y, decision),
        "accuracy_ci": list(ci["accuracy"]),
        "macro_f1_ci": list(ci["macro_f1"]),
    }


@dataclass
class Scored:
    """The window's rows as the model answered them, and the votes that came."""

    proba: FloatArray  # what the estimate reads (see recalibrate)
    decision: IntArray
    vote: FloatArray  # the class voted, NaN without a vote
    groups: npt.NDArray[Any]  # building or site; a day without either
    when: pd.Series  # when the row was answered (NaT when unknown)
    source: dict[str, Any]
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
        raise DataError("nothing to judge: no predictions in the prediction_log window.")
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
    from conforto.model.predict import score_frame

    frame = next(source.frames())
    table = score_frame(model, frame).to_pandas()
    scored = table["reason"].eq("").to_numpy()
    if not scored.any():
        raise DataError(f"nothing to judge: no row of {source.path} could be scored.")
    frame, table = frame.loc[scored].reset_index(drop=True), table.loc[scored]
    names = {name: k for k, name in enumerate(CLASS_NAMES)}
    vote = frame.get("thermal_sensation", pd.Series(np.nan, index=frame.index))
    when = pd.to_datetime(
        frame.get("timestamp", pd.Series(None, index=frame.index, dtype=object)),
        errors="coerce",
        utc=True,
        format="ISO8601",
    )
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
) -> dict[str, Any]:
    """``performance.json``: estimated, realised and validation figures, and the verdict.

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
    metrics = model.manifest.get("metrics", {})
    validation = {k: float(metrics[k]) for k in JUDGED if k in metrics}
    reasons = []
    for key, reference in validation.items():
        if estimated[key] < reference - config.estimated_tolerance:
            reasons.append(f"estimated {key} {estimated[key]:.3f} < {reference:.3f} − tolerance")
        if (
            realised is not None
            and realised[f"{key}_ci"][1] < reference - config.realised_tolerance
        ):
            reasons.append(
                f"realised {key} {realised[key]:.3f} (95 % up to {realised[f'{key}_ci'][1]:.3f}) "
                f"< {reference:.3f} − tolerance"
            )
    return {
        "model_version": model_version or model.version,
        "source": scored.source,
        "rows": len(scored.decision),
        "labelled_rows": int(labelled.sum()),
        "estimated": estimated,
        "estimator": scored.estimator,
        "realised": realised,
        "validation": validation,
        "degraded": bool(reasons),
        "reasons": reasons,
    }


def over_time(scored: Scored) -> pd.DataFrame:
    """Per day (per week beyond 60 days): rows, votes, estimated and realised accuracy."""
    if scored.when.isna().all():
        return pd.DataFrame()
    days = (scored.when.max() - scored.when.min()).days
    period = scored.when.dt.tz_convert(None).dt.to_period("W" if days > 60 else "D")
    right = np.where(scored.labelled, scored.decision == np.nan_to_num(scored.vote), np.nan)
    frame = pd.DataFrame(
        {
            "period": period.to_numpy(),
            "estimated": scored.proba[np.arange(len(scored.decision)), scored.decision],
            "realised": right,
        }
    )
    grouped = frame.groupby("period")
    return pd.DataFrame(
        {
            "rows": grouped.size(),
            "votes": grouped["realised"].count(),
            "estimated": grouped["estimated"].mean(),
            "realised": grouped["realised"].mean(),
        }
    )


def performance_figure(scored: Scored, result: dict[str, Any]) -> str:
    """Accuracy over time (estimated and realised), the class mix answered and voted, and the
    answered vs voted confusion; a PNG data URI.
    """
    fig = new_figure(11.0, 3.2)
    timeline, mix, cm_ax = fig.subplots(1, 3, gridspec_kw={"width_ratios": [2.2, 1, 1]})
    series = over_time(scored)
    if len(series):
        x = pd.PeriodIndex(series.index).to_timestamp()
        timeline.plot(x, series["estimated"], marker="o", label="estimated")
        timeline.plot(x, series["realised"], marker="s", linestyle="", label="realised (votes)")
    for key, colour in (("accuracy", "#999"),):
        if key in result["validation"]:
            timeline.axhline(result["validation"][key], color=colour, ls=":", label="validation")
    timeline.set_title("accuracy over time", fontsize=9)
    timeline.legend(fontsize=7)
    timeline.tick_params(labelsize=7)
    answered = np.bincount(scored.decision, minlength=3) / max(len(scored.decision), 1)
    voted_y = scored.vote[scored.labelled].astype(np.int64)
    voted = np.bincount(voted_y, minlength=3) / max(len(voted_y), 1)
    pos = np.arange(3)
    mix.bar(pos - 0.2, answered, 0.4, label="answered")
    mix.bar(pos + 0.2, voted, 0.4, label="voted")
    mix.set_xticks(pos, CLASS_NAMES, fontsize=7)
    mix.set_title("class mix", fontsize=9)
    mix.legend(fontsize=7)
    cm = confusion(voted_y, scored.decision[scored.labelled])
    cm_ax.imshow(cm, cmap="Blues")
    for i in range(3):
        for j in range(3):
            cm_ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8)
    cm_ax.set_xticks(pos, CLASS_NAMES, fontsize=7)
    cm_ax.set_yticks(pos, CLASS_NAMES, fontsize=7)
    cm_ax.set_xlabel("answered", fontsize=8)
    cm_ax.set_ylabel("voted", fontsize=8)
    cm_ax.set_title("answered vs voted", fontsize=9)
    return figure_uri(fig)


def check_performance(
    model: ThermalModel,
    current: Source,
    *,
    config: MonitorConfig | None = None,
    model_version: str | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], Scored]:
    """Estimate and measure the model's performance on a window (see the module docstring).

    Raises
    ------
    DataError
        When the window has no rows to judge.
    """
    if isinstance(current, LogSource):
        scored = score_log(current, on_chunk)
    elif isinstance(current, FileSource):
        scored = score_file(model, current)
    else:
        raise TypeError(f"cannot judge performance on {current!r}")
    scored = recalibrate(model, scored)
    return judge(model, scored, config or MonitorConfig(), model_version=model_version), scored


def write_performance(result: dict[str, Any], scored: Scored, out: Path) -> dict[str, Path]:
    """Write ``performance.json`` and ``performance.html`` into ``out``."""
    html = render(
        "performance.html",
        data=result,
        figure=performance_figure(scored, result),
        timeline=over_time(scored),
    )
    return {
        "performance.json": atomic_write_json(out / "performance.json", result),
        "performance.html": atomic_write_text(out / "performance.html", html),
    }


def performance_message(result: dict[str, Any]) -> Message:
    """The model's performance degraded: estimated, realised and validation figures."""
    est, real, val = result["estimated"], result["realised"], result["validation"]
    pairs = {
        "estimated accuracy": f"{est['accuracy']:.3f}",
        "realised accuracy": f"{real['accuracy']:.3f}" if real else "no votes yet",
        "validation accuracy": f"{val.get('accuracy', float('nan')):.3f}",
        "votes": f"{result['labelled_rows']:,} of {result['rows']:,} predictions",
    }
    blocks = [
        header(f"Model {result['model_version']} degraded"),
        fields(pairs),
        section("\n".join(f"• {r}" for r in result.get("reasons", []))),
    ]
    return Message("performance", f":rotating_light: conforto model degraded: {pairs}", blocks)
