"""The tracker protocol, a no-op tracker and a guard that turns failures into warnings."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)


@runtime_checkable
class Tracker(Protocol):
    """What a stage can record about its run."""

    def start_run(self, name: str, tags: Mapping[str, str] | None = None) -> None:
        """Begin a run called ``name``."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record the run's parameters."""

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Record numeric results."""

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Attach tags to the run."""

    def log_artifact(self, path: Path) -> None:
        """Attach a file or folder to the run."""

    def end_run(self, status: str = "FINISHED") -> None:
        """Close the run with ``status`` (``FINISHED`` or ``FAILED``)."""


class NullTracker:
    """A tracker that records nothing (the default when no tracker is configured)."""

    def start_run(self, name: str, tags: Mapping[str, str] | None = None) -> None:
        """Do nothing."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Do nothing."""

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Do nothing."""

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Do nothing."""

    def log_artifact(self, path: Path) -> None:
        """Do nothing."""

    def end_run(self, status: str = "FINISHED") -> None:
        """Do nothing."""


class GuardedTracker:
    """Forward calls to ``inner``; a call that raises logs a warning instead of failing.

    Attributes
    ----------
    failures
        ``(method, message)`` of every call that failed, for the stage's summary.
    """

    def __init__(self, inner: Tracker) -> None:
        self.inner = inner
        self.failures: list[tuple[str, str]] = []

    def _call(self, method: str, *args: Any, **kwargs: Any) -> None:
        try:
            getattr(self.inner, method)(*args, **kwargs)
        except Exception as exc:
            self.failures.append((method, f"{type(exc).__name__}: {exc}"))
            log.warning(
                "tracking: %s.%s failed (%s: %s); the stage goes on and its results on disk "
                "are complete",
                type(self.inner).__name__,
                method,
                type(exc).__name__,
                exc,
            )

    def start_run(self, name: str, tags: Mapping[str, str] | None = None) -> None:
        """Begin a run, or warn."""
        self._call("start_run", name, tags)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record parameters, or warn."""
        self._call("log_params", params)

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Record metrics, or warn."""
        self._call("log_metrics", metrics)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Attach tags, or warn."""
        self._call("set_tags", tags)

    def log_artifact(self, path: Path) -> None:
        """Attach a file, or warn."""
        self._call("log_artifact", path)

    def end_run(self, status: str = "FINISHED") -> None:
        """Close the run, or warn."""
        self._call("end_run", status)


@contextmanager
def tracked_run(
    tracker: Tracker, name: str, tags: Mapping[str, str] | None = None
) -> Iterator[GuardedTracker]:
    """Open a guarded run on ``tracker`` and close it, ``FAILED`` if the body raises.

    Parameters
    ----------
    tracker
        Any tracker; it is wrapped in :class:`GuardedTracker`.
    name
        Run name, e.g. ``"data_validation"``.
    tags
        Tags set when the run starts.

    Yields
    ------
    GuardedTracker
        The guarded tracker to log to.
    """
    guarded = tracker if isinstance(tracker, GuardedTracker) else GuardedTracker(tracker)
    guarded.start_run(name, tags)
    try:
        yield guarded
    except BaseException:
        guarded.end_run("FAILED")
        raise
    guarded.end_run("FINISHED")
