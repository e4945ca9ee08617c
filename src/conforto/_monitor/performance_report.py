"""What a performance check leaves for people: its table over time and its figure, the
report's files (``performance.json``, ``performance.html``) and the Slack message when the model
degraded. The estimate and the judgement are :mod:`conforto._monitor.performance`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from conforto._data.target import CLASS_NAMES
from conforto._fileio import atomic_write_json, atomic_write_text
from conforto._notify import Message, fields, header, section
from conforto._reports import figure_uri, new_figure, render
from conforto._scoring.scores import confusion

if TYPE_CHECKING:
    from pathlib import Path

    from conforto._monitor.performance import PerformanceReport, Scored


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


def performance_figure(scored: Scored, result: PerformanceReport) -> str:
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
        if key in result.validation:
            timeline.axhline(result.validation[key], color=colour, ls=":", label="validation")
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


def write_performance(result: PerformanceReport, scored: Scored, out: Path) -> dict[str, Path]:
    """Write ``performance.json`` and ``performance.html`` into ``out``."""
    data = result.to_json()
    html = render(
        "performance.html",
        data=data,
        figure=performance_figure(scored, result),
        timeline=over_time(scored),
    )
    return {
        "performance.json": atomic_write_json(out / "performance.json", data),
        "performance.html": atomic_write_text(out / "performance.html", html),
    }


def performance_message(result: PerformanceReport) -> Message:
    """The model's performance degraded: estimated, realised and validation figures."""
    real = result.realised
    pairs = {
        "estimated accuracy": f"{result.estimated['accuracy']:.3f}",
        "realised accuracy": f"{real.accuracy:.3f}" if real else "no votes yet",
        "validation accuracy": f"{result.validation.get('accuracy', float('nan')):.3f}",
        "votes": f"{result.labelled_rows:,} of {result.rows:,} predictions",
    }
    blocks = [
        header(f"Model {result.model_version} degraded"),
        fields(pairs),
        section("\n".join(f"• {r}" for r in result.reasons)),
    ]
    return Message("performance", f":rotating_light: conforto model degraded: {pairs}", blocks)
