"""The prediction log: every prediction and feedback vote, buffered here and stored in batches.

Requests only append to an in-memory buffer; a background thread hands it to a sink in batches
(one transaction per batch): :class:`~conforto.serving.logdb.LogDatabase` in this process, or
:class:`~conforto.serving.logprocess.LogProcess`, the same database in a child process (the
service's choice: SQLAlchemy's per-row work then never holds this process's GIL). When the
database is down, predictions are still served: rows wait in the bounded buffer and the write
is retried with back-off; rows that do not fit are counted as dropped, never silently. Closing
flushes what is left. This module imports no database code.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol

from conforto.errors import LogUnavailable

log = logging.getLogger(__name__)

#: A row as queued: its table (``"predictions"`` or ``"feedback"``) and its values, in the
#: order of :data:`PREDICTION_FIELDS` or :data:`FEEDBACK_FIELDS`.
Queued = tuple[str, tuple[Any, ...]]
#: A queued prediction's values; ``created`` in seconds since the epoch, ``inputs`` the
#: ``(name, value)`` pairs given, ``site`` the building or site the caller named (or ``None``).
PREDICTION_FIELDS = (
    "prediction_id",
    "created",
    "model_version",
    "predicted_class",
    "p_cool",
    "p_neutral",
    "p_warm",
    "pmv",
    "latency_ms",
    "inputs",
    "site",
)
#: A queued vote's values.
FEEDBACK_FIELDS = ("prediction_id", "thermal_sensation", "created")


def queued_prediction(
    prediction: dict[str, Any], inputs: dict[str, Any], latency_ms: float, site: str | None = None
) -> Queued:
    """A prediction (the API's response shape) and the inputs given (no ``None``s) as queued.

    Flat values, not the response itself: tuples of numbers and strings are left alone by the
    garbage collector, which would otherwise walk the whole buffer at every full collection
    while the database is slow (tens of milliseconds, measured).
    """
    p = prediction["probabilities"]
    return (
        "predictions",
        (
            prediction["prediction_id"],
            time.time(),
            prediction["model_version"],
            prediction["predicted_class"],
            p["cool"],
            p["neutral"],
            p["warm"],
            prediction.get("pmv"),
            latency_ms,
            tuple(inputs.items()),
            site,
        ),
    )


class LogSink(Protocol):
    """Where the buffer's batches go."""

    def write(self, batch: Sequence[Queued]) -> None:
        """Store the rows in one transaction, or raise :class:`LogUnavailable`."""

    def has_prediction(self, prediction_id: str) -> bool:
        """Whether a prediction is stored; :class:`LogUnavailable` when it cannot be told."""

    def closing(self) -> LogSink:
        """The sink for the final flush, at shutdown (this one, or one that fits it better)."""

    def close(self) -> None:
        """Release connections (and processes)."""


@dataclass
class LogCounters:
    """Callbacks the log reports through (the service turns them into Prometheus metrics)."""

    written: Callable[[str, int], None] = lambda table, rows: None
    failed: Callable[[], None] = lambda: None
    dropped: Callable[[], None] = lambda: None
    buffered: Callable[[int], None] = lambda rows: None


class PredictionLog:
    """Buffered, batched writes of predictions and feedback to a sink.

    Parameters
    ----------
    sink
        Where batches are stored: a :class:`~conforto.serving.logdb.LogDatabase` or a
        :class:`~conforto.serving.logprocess.LogProcess`. Closed with the log.
    capacity
        Most rows held in memory while the database cannot take them [rows].
    batch_size
        Most rows per write transaction [rows].
    interval
        Pause between flushes when the buffer is small [s].
    counters
        Where writes, failures, drops and the buffer size are reported.
    """

    def __init__(
        self,
        sink: LogSink,
        *,
        capacity: int = 100_000,
        batch_size: int = 500,
        interval: float = 0.2,
        counters: LogCounters | None = None,
    ) -> None:
        self.sink = sink
        self.capacity = capacity
        self.batch_size = batch_size
        self.interval = interval
        self.counters = counters or LogCounters()
        self._buffer: deque[Queued] = deque()
        self._pending: set[str] = set()  # prediction ids still in the buffer
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="conforto-predlog", daemon=True)
        self.written = 0
        self.failures = 0
        self.dropped = 0

    def start(self) -> PredictionLog:
        """Start the writer thread."""
        self._thread.start()
        return self

    @property
    def buffered(self) -> int:
        """Rows waiting to be written."""
        return len(self._buffer)

    def _add(self, row: Queued) -> bool:
        with self._lock:
            if len(self._buffer) >= self.capacity:
                self.dropped += 1
                self.counters.dropped()
                return False
            self._buffer.append(row)
            if row[0] == "predictions":
                self._pending.add(row[1][0])
            self.counters.buffered(len(self._buffer))
        return True

    def add_prediction(
        self,
        prediction: dict[str, Any],
        inputs: dict[str, Any],
        latency_ms: float,
        site: str | None = None,
    ) -> bool:
        """Queue one prediction (see :func:`queued_prediction`); False when the buffer is full."""
        return self._add(queued_prediction(prediction, inputs, latency_ms, site))

    def add_feedback(self, prediction_id: str, thermal_sensation: float) -> bool:
        """Queue an occupant's vote for a prediction; False when the buffer is full."""
        return self._add(("feedback", (prediction_id, thermal_sensation, time.time())))

    def known(self, prediction_id: str) -> bool:
        """Whether a prediction id is in the buffer or the database.

        Raises
        ------
        LogUnavailable
            When the database cannot be asked.
        """
        return prediction_id in self._pending or self.sink.has_prediction(prediction_id)

    def flush(self) -> int:
        """Write one batch from the buffer in one transaction; rows leave it only once stored.

        Returns
        -------
        int
            Rows written.

        Raises
        ------
        LogUnavailable
            When the database refuses; the rows stay buffered.
        """
        with self._lock:
            batch = list(islice(self._buffer, self.batch_size))
        if not batch:
            return 0
        self.sink.write(batch)
        written = {"predictions": 0, "feedback": 0}
        with self._lock:
            for _ in batch:
                self._buffer.popleft()
            for table, queued in batch:
                written[table] += 1
                if table == "predictions":
                    self._pending.discard(queued[0])
            self.counters.buffered(len(self._buffer))
        self.written += len(batch)
        for table, rows in written.items():
            if rows:
                self.counters.written(table, rows)
        return len(batch)

    def _failed(self, exc: LogUnavailable, retry: float) -> None:
        self.failures += 1
        self.counters.failed()
        log.warning(
            "prediction log: write failed (%s); %d rows wait for a retry in %.1f s",
            exc,
            self.buffered,
            retry,
        )

    def _run(self) -> None:
        backoff = self.interval
        while not self._stop.is_set():
            try:
                written = self.flush()
                backoff = self.interval
            except LogUnavailable as exc:
                self._failed(exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if written < self.batch_size:
                self._stop.wait(self.interval)

    def close(self, timeout: float = 10.0) -> int:
        """Stop the writer, flush what is left (retrying for up to ``timeout`` s), close the sink.

        Returns
        -------
        int
            Rows that could not be written (0 after a clean shutdown).
        """
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.sink = self.sink.closing()
        deadline = time.monotonic() + timeout
        while self._buffer and time.monotonic() < deadline:
            try:
                self.flush()
            except LogUnavailable as exc:
                self._failed(exc, 0.5)
                time.sleep(0.5)
        if self._buffer:
            log.error("prediction log: %d rows could not be written before exit", self.buffered)
        self.sink.close()
        return self.buffered
