"""Should the production model be retrained? The monitors' latest findings, weighed.

Three reasons, each with its threshold under ``monitor:`` in ``configs/pipeline.yaml``: drift
on the inputs the model relies on most (the ``retrain_top_inputs`` with the largest gain), a
degraded performance, or at least ``retrain_min_votes`` occupants' votes since the model was
trained (new labels worth learning from). The decision, with its reasons, is written to
``decision.json``; retraining itself goes through the gated pipeline, which promotes only what
its gate validates.

A due retraining starts at most once per ``retrain_cooldown_hours``, and not while a training
run is under way: the check reads the tracking server's runs of that span (shared by every
machine, unlike a runner's disk), where each check's run carries a ``training`` tag saying
whether it started one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from conforto._fileio import atomic_write_json
from conforto._lineage import timestamp
from conforto._monitor.drift import DriftReport, check_drift, write_drift
from conforto._monitor.performance import PerformanceReport, check_performance
from conforto._monitor.performance_report import write_performance
from conforto._monitor.window import LogSource, Source, log_connection
from conforto._notify import Message, context, header, section
from conforto._predictions.records import OCCUPANT
from conforto._predictions.schema import feedback, predictions
from conforto._tracking import NullTracker, TrackedRun, Tracker, tracked_run
from conforto.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from conforto._model.artifact import ThermalModel
    from conforto._monitor.thresholds import MonitorConfig

    #: The tracked runs started since a time, newest first
    #: (:func:`conforto._tracking.mlflow.runs_since` over the tracking server).
    RunHistory = Callable[[datetime], Sequence[TrackedRun]]

#: The tracked stages of a training run: data validation, training, the gate, promotion.
TRAINING_STAGES = frozenset({"data", "train", "gate", "promote"})
#: The tag of a check's run that says what it did about training: ``started``, ``held`` or
#: ``not due``.
TRAINING_TAG = "training"


@dataclass
class Decision:
    """Whether to retrain, and why; whether to start training now, or why not."""

    model_version: str
    #: Retraining is due (``reasons`` say why).
    retrain: bool
    reasons: list[str]
    new_votes: int
    drift: DriftReport | None = None
    performance: PerformanceReport | None = None
    checked: str = field(default_factory=timestamp)
    #: Why a due retraining does not start now (cooldown, or a training under way).
    held: str | None = None

    @property
    def start_training(self) -> bool:
        """Training should start now: it is due and nothing holds it."""
        return self.retrain and self.held is None

    @property
    def training(self) -> str:
        """What the check did about training: ``started``, ``held`` or ``not due``."""
        if not self.retrain:
            return "not due"
        return "held" if self.held else "started"

    def to_json(self) -> dict[str, Any]:
        """``decision.json``'s content."""
        return {
            "model_version": self.model_version,
            "retrain": self.retrain,
            "reasons": self.reasons,
            "new_votes": self.new_votes,
            "drift": None if self.drift is None else self.drift.to_json(),
            "performance": None if self.performance is None else self.performance.to_json(),
            "checked": self.checked,
            "start_training": self.start_training,
            "held": self.held,
        }


def important_inputs(model: ThermalModel, top: int) -> list[str]:
    """The model's ``top`` inputs by total gain (its derived physics features aside)."""
    gain = model.manifest.booster.feature_importance_gain
    inputs = set(model.spec.inputs)
    ranked = sorted((name for name in gain if name in inputs), key=lambda n: -gain[n])
    return ranked[:top]


def votes_since(url: str, since: datetime) -> int:
    """Occupants' votes recorded in the log since ``since``, on occupants' predictions (not
    those orphaned: their prediction never landed).

    Raises
    ------
    LogUnavailable
        When the database cannot be read.
    """
    query = (
        sa.select(sa.func.count())
        .select_from(
            feedback.join(predictions, predictions.c.prediction_id == feedback.c.prediction_id)
        )
        .where(feedback.c.created >= since, predictions.c.kind == OCCUPANT)
    )
    with log_connection(url) as conn:
        return int(conn.execute(query).scalar() or 0)


def trained_at(model: ThermalModel) -> datetime:
    """When the model was trained (its manifest's ``created``)."""
    return datetime.fromisoformat(model.manifest.created)


def fresh(path: Path, max_age_hours: float) -> bool:
    """Whether a monitor's last result exists and is younger than ``max_age_hours``."""
    return path.is_file() and time.time() - path.stat().st_mtime <= max_age_hours * 3600


def decide(
    model: ThermalModel,
    version: str,
    *,
    drift: DriftReport | None,
    performance: PerformanceReport | None,
    new_votes: int,
    config: MonitorConfig,
) -> Decision:
    """Weigh the findings (the drift and performance reports, or ``None`` when a monitor had
    nothing to judge) against the thresholds.
    """
    reasons = []
    if drift is not None:
        key = set(important_inputs(model, config.retrain_top_inputs))
        hit = [name for name in drift.drifted_features if name in key]
        if hit:
            reasons.append(
                f"drift on {', '.join(hit)}, among the {config.retrain_top_inputs} inputs the "
                "model relies on most"
            )
    if performance is not None and performance.degraded:
        reasons.append("performance degraded: " + "; ".join(performance.reasons))
    if new_votes >= config.retrain_min_votes:
        reasons.append(
            f"{new_votes} occupants' votes since the model was trained "
            f"(retrains from {config.retrain_min_votes})"
        )
    return Decision(version, bool(reasons), reasons, new_votes, drift, performance)


def held_by(runs: Sequence[TrackedRun], cooldown_hours: float) -> str | None:
    """Why a due retraining must wait, from the tracked runs of the last ``cooldown_hours``
    (newest first): a check of that span started training, or a training stage still runs
    (one that died unfinished stops holding when it leaves the span); ``None`` when none.
    """
    for run in runs:
        if run.tags.get(TRAINING_TAG) == "started":
            after = run.started + timedelta(hours=cooldown_hours)
            return (
                f"the check of {run.started:%Y-%m-%d %H:%M} UTC started training; the next "
                f"may start from {after:%Y-%m-%d %H:%M} UTC (cooldown {cooldown_hours:g} h)"
            )
        if run.status == "RUNNING" and run.tags.get("stage") in TRAINING_STAGES:
            return f"a training run is under way ({run.name}, since {run.started:%H:%M} UTC)"
    return None


def write_decision(decision: Decision, out: Path) -> Path:
    """Write ``decision.json`` into ``out``."""
    return atomic_write_json(out / "decision.json", decision.to_json())


def findings(
    model: ThermalModel,
    window: Source,
    config: MonitorConfig,
    reports: Path,
    *,
    model_version: str | None = None,
) -> tuple[DriftReport | None, PerformanceReport | None]:
    """The drift and performance results for this model: the last ones in ``reports/drift``
    and ``reports/performance`` when younger than ``config.max_result_age_hours``, else the
    monitors run now on ``window`` (and their reports written); ``None`` for a monitor with
    nothing to judge.
    """
    version = model_version or model.version
    age = config.max_result_age_hours
    last = reports / "drift" / "drift.json"
    drift = None
    if fresh(last, age):
        drift = DriftReport.from_json(json.loads(last.read_text()), config.drift_share)
    if drift is None or drift.model_version != version:
        try:
            drift, before, now = check_drift(model, window, config=config, model_version=version)
            write_drift(drift, before, now, reports / "drift")
        except DataError:  # nothing in the window
            drift = None
    last = reports / "performance" / "performance.json"
    performance = None
    if fresh(last, age):
        performance = PerformanceReport.from_json(json.loads(last.read_text()))
    if performance is None or performance.model_version != version:
        try:
            performance, scored = check_performance(
                model, window, config=config, model_version=version
            )
            write_performance(performance, scored, reports / "performance")
        except DataError:  # nothing in the window
            performance = None
    return drift, performance


def check_model(
    model: ThermalModel,
    window: Source,
    config: MonitorConfig,
    reports: Path,
    *,
    model_version: str | None = None,
    tracker: Tracker | None = None,
    outbox: Path | None = None,
    history: RunHistory | None = None,
) -> tuple[Decision, Path]:
    """Gather the findings, count the new votes, decide, and record the decision (its JSON in
    ``reports/check/decision.json`` and a tracked ``monitor_check`` run).

    A due retraining is held when ``history`` (the tracked runs, read when due) shows training
    started or under way within ``config.retrain_cooldown_hours``; without it, nothing holds.

    Raises
    ------
    LogUnavailable
        When the prediction log cannot be read.
    TrackingError
        When ``history`` cannot be read.
    """
    drift, performance = findings(model, window, config, reports, model_version=model_version)
    url = window.url if isinstance(window, LogSource) else None
    votes = votes_since(url, trained_at(model)) if url else 0
    decision = decide(
        model,
        model_version or model.version,
        drift=drift,
        performance=performance,
        new_votes=votes,
        config=config,
    )
    if decision.retrain and history is not None:
        cooldown = config.retrain_cooldown_hours
        decision.held = held_by(history(datetime.now(UTC) - timedelta(hours=cooldown)), cooldown)
    path = write_decision(decision, reports / "check")
    with tracked_run(
        tracker or NullTracker(), "monitor_check", {"stage": "monitor"}, outbox=outbox
    ) as run:
        run.log_params({"model_version": decision.model_version})
        run.log_metrics({"retrain": float(decision.retrain), "new_votes": float(votes)})
        run.set_tags(
            {
                "reasons": "; ".join(decision.reasons)[:5000] or "none",
                TRAINING_TAG: decision.training,
            }
        )
        run.log_artifact(path)
    return decision, path


def check_message(decision: Decision) -> Message:
    """``conforto monitor check`` decided the model should be retrained, and why."""
    blocks = [
        header(f"Model {decision.model_version}: retraining is due"),
        section("\n".join(f"• {r}" for r in decision.reasons)),
        context(f"{decision.new_votes:,} new votes · checked {decision.checked}"),
    ]
    text = f":arrows_counterclockwise: conforto: retrain model {decision.model_version}"
    return Message("check", text, blocks)
