"""The tracker protocol, a no-op tracker, and the guarded set of backends stages log to."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from conforto._fileio import atomic_write_text
from conforto.errors import AccessRefused

if TYPE_CHECKING:
    from datetime import datetime

log = logging.getLogger(__name__)

#: A run parameter's value, as trackers record it.
Param = str | int | float | bool | None
#: A run's parameters: name → value.
Params = Mapping[str, Param]
#: Errors that mean a bug, not an unavailable tracker: :class:`Trackers` lets them through.
PROGRAMMING_ERRORS = (TypeError, AttributeError, NameError, AssertionError)


@dataclass(frozen=True, slots=True)
class TrackedRun:
    """One run as a tracking server recorded it: what later commands read back."""

    #: The run's name, e.g. ``model_training``.
    name: str
    #: ``RUNNING``, ``FINISHED``, ``FAILED`` or ``KILLED``.
    status: str
    #: When it started (aware, UTC).
    started: datetime
    #: Its tags, e.g. ``{"stage": "train"}``.
    tags: Mapping[str, str]


@runtime_checkable
class Tracker(Protocol):
    """What a stage can record about its run."""

    def start_run(self, name: str, tags: Mapping[str, str] | None = None) -> None:
        """Begin a run called ``name``."""

    def log_params(self, params: Params) -> None:
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

    def log_params(self, params: Params) -> None:
        """Do nothing."""

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Do nothing."""

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Do nothing."""

    def log_artifact(self, path: Path) -> None:
        """Do nothing."""

    def end_run(self, status: str = "FINISHED") -> None:
        """Do nothing."""


def members(tracker: Tracker) -> dict[str, Tracker]:
    """A tracker's backends by name (``mlflow``, ``clearml``, or the class name)."""
    if isinstance(tracker, Trackers):
        return tracker.members
    return {getattr(tracker, "backend", type(tracker).__name__): tracker}


class Trackers:
    """Several tracking backends behind one tracker (MLflow and ClearML at once), each guarded.

    Every call goes to every backend; a call that raises in one logs a warning instead of
    failing, and that backend is left alone for the rest of the run, so one backend being down
    never stops the others, nor the stage. A bug (a programming error) and a server refusing
    the credentials sent (:class:`AccessRefused`) stop the stage: replayed later, they would
    fail the same way.

    Parameters
    ----------
    members
        The backends by name (``mlflow``, ``clearml``); any :class:`Tracker` may be one.
    outbox
        JSON-lines file where failed calls are kept, to be sent later with
        :func:`replay_outbox` (``conforto tracking retry``); ``None`` keeps nothing.

    Attributes
    ----------
    failures
        ``(method, message)`` of every call that failed, for the stage's summary. After a
        backend's first failure its remaining calls are not attempted (a dead server would make
        each one wait for its timeout); they go straight to the outbox.
    """

    def __init__(self, members: Mapping[str, Tracker], outbox: Path | None = None) -> None:
        self.members = dict(members)
        self.outbox = outbox
        self.failures: list[tuple[str, str]] = []
        self._down: set[str] = set()
        self._run = ""

    def _call(self, method: str, *args: Any) -> None:
        if method == "start_run":
            self._run = f"{args[0]}@{time.time():.6f}"
        for backend, tracker in self.members.items():
            if backend in self._down:  # down: keep the rest of the run for later, don't wait
                self._keep(backend, method, args)
                continue
            try:
                getattr(tracker, method)(*args)
            except (*PROGRAMMING_ERRORS, AccessRefused):
                raise  # a bug, or credentials refused: replaying it later would fail again
            except Exception as exc:  # servers and SDKs raise anything; none may stop the stage
                self._down.add(backend)
                self.failures.append((method, f"{backend}: {type(exc).__name__}: {exc}"))
                self._keep(backend, method, args)
                log.warning(
                    "tracking: %s.%s failed (%s: %s); the stage goes on and its results on disk "
                    "are complete",
                    backend,
                    method,
                    type(exc).__name__,
                    exc,
                )

    def _keep(self, backend: str, method: str, args: tuple[Any, ...]) -> None:
        if self.outbox is None:
            return
        payload = [
            dict(a) if isinstance(a, Mapping) else str(a) if isinstance(a, Path) else a
            for a in args
        ]
        record = {"run": self._run, "backend": backend, "method": method, "args": payload}
        self.outbox.parent.mkdir(parents=True, exist_ok=True)
        with self.outbox.open("a") as handle:
            handle.write(json.dumps(record, default=str) + "\n")

    def start_run(self, name: str, tags: Mapping[str, str] | None = None) -> None:
        """Begin a run, or warn."""
        self._call("start_run", name, tags)

    def log_params(self, params: Params) -> None:
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


def replay_outbox(tracker: Tracker, outbox: Path) -> int:
    """Send the calls kept in ``outbox`` to ``tracker``, one run per original run.

    Calls of a run whose ``start_run`` had succeeded go to a new run of the same name, tagged
    ``conforto.replayed``. Each kept call goes to the backend it failed on; calls for a backend
    ``tracker`` does not have stay in the outbox, which is removed once empty.

    Returns
    -------
    int
        Number of calls sent.
    """
    if not outbox.is_file():
        return 0
    backends = members(tracker)
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    left: list[str] = []
    for line in outbox.read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        backend = record.get("backend") or next(iter(backends))
        if backend in backends:
            runs.setdefault((backend, record["run"]), []).append(record)
        else:
            left.append(line)
    sent = 0
    for (backend, run), records in runs.items():
        target = backends[backend]
        name = run.rsplit("@", 1)[0] or "replayed"
        calls = [r for r in records if r["method"] not in ("start_run", "end_run")]
        target.start_run(name, {"conforto.replayed": "true"})
        for record in calls:
            args = record["args"]
            if record["method"] == "log_artifact":
                args = [Path(args[0])]
            getattr(target, record["method"])(*args)
            sent += 1
        status = next((r["args"][0] for r in records if r["method"] == "end_run"), "FINISHED")
        target.end_run(status)
    if left:
        atomic_write_text(outbox, "\n".join(left) + "\n")
    else:
        outbox.unlink()
    return sent


@contextmanager
def tracked_run(
    tracker: Tracker,
    name: str,
    tags: Mapping[str, str] | None = None,
    *,
    outbox: Path | None = None,
) -> Iterator[Trackers]:
    """Open a guarded run on ``tracker`` and close it, ``FAILED`` if the body raises.

    Parameters
    ----------
    tracker
        Any tracker; its backends are guarded for this run (:class:`Trackers`).
    name
        Run name, e.g. ``"data_validation"``.
    tags
        Tags set when the run starts.
    outbox
        Where failed calls are kept for a later retry.

    Yields
    ------
    Trackers
        The guarded backends to log to.
    """
    guarded = Trackers(members(tracker), outbox)
    guarded.start_run(name, tags)
    try:
        yield guarded
    except BaseException:
        guarded.end_run("FAILED")
        raise
    guarded.end_run("FINISHED")
