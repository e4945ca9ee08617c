"""The prediction log: every prediction and feedback vote, stored through SQLAlchemy.

Requests only append to an in-memory buffer; a background thread writes it in batches (one
transaction per batch). When the database is down, predictions are still served: rows wait in
the bounded buffer and the write is retried with back-off; rows that do not fit are counted as
dropped, never silently. Closing flushes what is left. SQLite (the default, a file under
``CONFORTO_HOME``) and PostgreSQL (several instances writing to one database) both work.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import sqlalchemy as sa

from conforto.errors import ConfigError

log = logging.getLogger(__name__)

metadata = sa.MetaData()
predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("prediction_id", sa.String(32), primary_key=True),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("predicted_class", sa.String(8), nullable=False),
    sa.Column("p_cool", sa.Float, nullable=False),
    sa.Column("p_neutral", sa.Float, nullable=False),
    sa.Column("p_warm", sa.Float, nullable=False),
    sa.Column("pmv", sa.Float),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("inputs", sa.JSON, nullable=False),
)
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("feedback_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("prediction_id", sa.String(32), nullable=False, index=True),
    sa.Column("thermal_sensation", sa.Float, nullable=False),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
)
schema = sa.Table("conforto_schema", metadata, sa.Column("version", sa.Integer, primary_key=True))

#: The schema this code writes. Bump it with a migration in :data:`MIGRATIONS`.
SCHEMA_VERSION = 1
#: ``MIGRATIONS[n]`` moves a database from version ``n`` to ``n + 1``.
MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {}


def migrate(engine: sa.Engine) -> int:
    """Create the missing tables and bring an older schema up to :data:`SCHEMA_VERSION`.

    Returns
    -------
    int
        The schema version before migrating (0 for a new database).

    Raises
    ------
    ConfigError
        When the database was written by a newer conforto.
    """
    with engine.begin() as conn:
        metadata.create_all(conn)
        found = conn.execute(sa.select(sa.func.max(schema.c.version))).scalar()
        before = int(found or 0)
        if before > SCHEMA_VERSION:
            raise ConfigError(
                f"the prediction log {engine.url.render_as_string()} has schema version {before}, "
                f"newer than this conforto's {SCHEMA_VERSION}: upgrade conforto."
            )
        for version in range(max(before, 1), SCHEMA_VERSION):
            MIGRATIONS[version](conn)
        if before < SCHEMA_VERSION:
            conn.execute(sa.delete(schema))
            conn.execute(sa.insert(schema).values(version=SCHEMA_VERSION))
    return before


@dataclass
class LogCounters:
    """Callbacks the log reports through (the service turns them into Prometheus metrics)."""

    written: Callable[[str, int], None] = lambda table, rows: None
    failed: Callable[[], None] = lambda: None
    dropped: Callable[[], None] = lambda: None
    buffered: Callable[[int], None] = lambda rows: None


class PredictionLog:
    """Buffered, batched writes of predictions and feedback to a SQL database.

    Parameters
    ----------
    url
        SQLAlchemy database URL.
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
        url: str,
        *,
        capacity: int = 100_000,
        batch_size: int = 500,
        interval: float = 0.2,
        counters: LogCounters | None = None,
    ) -> None:
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        self.capacity = capacity
        self.batch_size = batch_size
        self.interval = interval
        self.counters = counters or LogCounters()
        self._buffer: deque[tuple[sa.Table, Any]] = deque()
        self._pending: set[str] = set()  # prediction ids still in the buffer
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._migrated = False
        self._schema_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="conforto-predlog", daemon=True)
        self.written = 0
        self.failures = 0
        self.dropped = 0

    def start(self) -> PredictionLog:
        """Start the writer thread (the schema is created on its first successful write)."""
        self._thread.start()
        return self

    @property
    def buffered(self) -> int:
        """Rows waiting to be written."""
        return len(self._buffer)

    def _add(self, table: sa.Table, row: Any) -> bool:
        with self._lock:
            if len(self._buffer) >= self.capacity:
                self.dropped += 1
                self.counters.dropped()
                return False
            self._buffer.append((table, row))
            if table is predictions:
                self._pending.add(row[0]["prediction_id"])
            self.counters.buffered(len(self._buffer))
        return True

    def add_prediction(
        self,
        prediction: dict[str, Any],
        inputs: dict[str, Any],
        latency_ms: float,
    ) -> bool:
        """Queue one prediction (the API's response shape) and the inputs given (no ``None``s);
        False when the buffer is full.

        Only references are queued here, on the request path; the row is built by the writer.
        """
        return self._add(predictions, (prediction, inputs, latency_ms, time.time()))

    @staticmethod
    def _prediction_row(
        queued: tuple[dict[str, Any], dict[str, Any], float, float],
    ) -> dict[str, Any]:
        prediction, inputs, latency_ms, created = queued
        p = prediction["probabilities"]
        return {
            "prediction_id": prediction["prediction_id"],
            "created": datetime.fromtimestamp(created, UTC),
            "model_version": prediction["model_version"],
            "predicted_class": prediction["predicted_class"],
            "p_cool": p["cool"],
            "p_neutral": p["neutral"],
            "p_warm": p["warm"],
            "pmv": prediction.get("pmv"),
            "latency_ms": latency_ms,
            "inputs": inputs,
        }

    def add_feedback(self, prediction_id: str, thermal_sensation: float) -> bool:
        """Queue an occupant's vote for a prediction; False when the buffer is full."""
        return self._add(
            feedback,
            {
                "prediction_id": prediction_id,
                "thermal_sensation": thermal_sensation,
                "created": datetime.now(UTC),
            },
        )

    def known(self, prediction_id: str) -> bool:
        """Whether a prediction id is in the buffer or the database.

        Raises
        ------
        sqlalchemy.exc.SQLAlchemyError
            When the database cannot be asked.
        """
        if prediction_id in self._pending:
            return True
        self._ensure_schema()
        query = sa.select(predictions.c.prediction_id).where(
            predictions.c.prediction_id == prediction_id
        )
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def _ensure_schema(self) -> None:
        with self._schema_lock:  # the writer thread and a request may both get here first
            if not self._migrated:
                migrate(self.engine)
                self._migrated = True

    def flush(self) -> int:
        """Write one batch from the buffer in one transaction; rows leave it only once stored.

        Returns
        -------
        int
            Rows written.

        Raises
        ------
        sqlalchemy.exc.SQLAlchemyError
            When the database refuses; the rows stay buffered.
        """
        with self._lock:
            batch = list(islice(self._buffer, self.batch_size))
        if not batch:
            return 0
        self._ensure_schema()
        rows: dict[str, list[dict[str, Any]]] = {"predictions": [], "feedback": []}
        for table, row in batch:
            rows[table.name].append(self._prediction_row(row) if table is predictions else row)
        with self.engine.begin() as conn:  # predictions first: feedback may refer to them
            for table in (predictions, feedback):
                if rows[table.name]:
                    conn.execute(sa.insert(table), rows[table.name])
        with self._lock:
            for _ in batch:
                self._buffer.popleft()
            for row in rows["predictions"]:
                self._pending.discard(row["prediction_id"])
            self.counters.buffered(len(self._buffer))
        self.written += len(batch)
        for name, table_rows in rows.items():
            if table_rows:
                self.counters.written(name, len(table_rows))
        return len(batch)

    def _run(self) -> None:
        backoff = self.interval
        while not self._stop.is_set():
            try:
                written = self.flush()
                backoff = self.interval
            except sa.exc.SQLAlchemyError as exc:
                self.failures += 1
                self.counters.failed()
                log.warning(
                    "prediction log: write failed (%s); %d rows wait for a retry in %.1f s",
                    type(exc).__name__,
                    self.buffered,
                    backoff,
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if written < self.batch_size:
                self._stop.wait(self.interval)

    def close(self, timeout: float = 10.0) -> int:
        """Stop the writer and flush what is left (retrying for up to ``timeout`` s).

        Returns
        -------
        int
            Rows that could not be written (0 after a clean shutdown).
        """
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        deadline = time.monotonic() + timeout
        while self._buffer and time.monotonic() < deadline:
            try:
                self.flush()
            except sa.exc.SQLAlchemyError as exc:
                self.failures += 1
                self.counters.failed()
                log.warning("prediction log: final flush failed (%s); retrying", exc)
                time.sleep(0.5)
        if self._buffer:
            log.error("prediction log: %d rows could not be written before exit", self.buffered)
        self.engine.dispose()
        return self.buffered
