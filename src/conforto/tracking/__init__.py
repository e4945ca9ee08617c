"""Experiment tracking behind one small protocol.

Stages talk to a :class:`Tracker`; :class:`NullTracker` records nothing, and
:class:`GuardedTracker` wraps any tracker so that its failures become warnings: a stage never
fails because a tracking server is unavailable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conforto.tracking.base import GuardedTracker, NullTracker, Tracker, replay_outbox, tracked_run

if TYPE_CHECKING:
    from conforto.settings import Settings

__all__ = [
    "GuardedTracker",
    "NullTracker",
    "Tracker",
    "make_tracker",
    "replay_outbox",
    "tracked_run",
]


def make_tracker(settings: Settings) -> Tracker:
    """The tracker chosen by ``CONFORTO_TRACKING__BACKEND`` (MLflow, embedded by default)."""
    if settings.tracking.backend == "none":
        return NullTracker()
    from conforto.tracking.mlflow import MlflowTracker

    embedded = settings.tracking.uri is None
    return MlflowTracker(
        settings.mlflow_uri,
        settings.tracking.experiment,
        artifact_location=settings.mlflow_artifacts if embedded else None,
    )
