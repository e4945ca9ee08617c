"""Experiment tracking behind one small protocol.

Stages talk to a :class:`Tracker`; :class:`NullTracker` records nothing, and :class:`Trackers`
holds several backends and guards each, so that their failures become warnings: a stage never
fails because a tracking server is unavailable.

May import: model (the MLflow Model's signature) and the top-level modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conforto._tracking.base import (
    NullTracker,
    TrackedRun,
    Tracker,
    Trackers,
    replay_outbox,
    tracked_run,
)
from conforto.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from conforto._settings import Settings

__all__ = [
    "NullTracker",
    "TrackedRun",
    "Tracker",
    "Trackers",
    "make_tracker",
    "replay_outbox",
    "tracked_run",
]


def make_tracker(settings: Settings, backends: Sequence[str] | None = None) -> Tracker:
    """The trackers chosen by ``CONFORTO_TRACKING__BACKENDS`` (or ``backends``).

    Parameters
    ----------
    settings
        Project settings (MLflow URI, ClearML project).
    backends
        Override of ``settings.tracking.backends``, e.g. from the pipeline config.

    Returns
    -------
    Tracker
        A :class:`NullTracker` for none, the one tracker, or :class:`Trackers` of all.
    """
    chosen = list(settings.tracking.backends if backends is None else backends)
    found: dict[str, Tracker] = {}
    for name in chosen:
        if name == "mlflow":
            from conforto._tracking.mlflow import MlflowTracker

            embedded = settings.tracking.uri is None
            found[name] = MlflowTracker(
                settings.mlflow_uri,
                settings.tracking.experiment,
                artifact_location=settings.mlflow_artifacts if embedded else None,
            )
        elif name == "clearml":
            from conforto._tracking.clearml import ClearmlTracker

            found[name] = ClearmlTracker(settings.tracking.clearml_project)
        else:
            raise ConfigError(f"unknown tracker {name!r}: choose among 'mlflow' and 'clearml'.")
    if not found:
        return NullTracker()
    return next(iter(found.values())) if len(found) == 1 else Trackers(found)
