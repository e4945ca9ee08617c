"""The prediction log's database: tables, schema versions, batched inserts and lookups.

SQLite (the default, a file under ``CONFORTO_HOME``) and PostgreSQL (several instances writing
to one database) both work. The service reaches this module through :mod:`.writer`, in a
process of its own; nothing here runs on the request path.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from conforto.errors import ConfigError, ConfortoError, LogUnavailable
from conforto.predictions.records import FIELDS, EventRow, PredictionRow, ShadowRow, VoteRow, values

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from conforto.predictions.records import Row

#: The occupant responses, as the log stores them.
RESPONSE_FIELDS = (
    "p_dissatisfied",
    "p_unacceptable",
    "p_prefer_cooler",
    "p_prefer_no_change",
    "p_prefer_warmer",
)

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
    sa.Column("site", sa.String(100)),
    sa.Column("prediction_set", sa.String(24)),
    sa.Column("coverage", sa.Float),
    *(sa.Column(name, sa.Float) for name in RESPONSE_FIELDS),
    # who answered: null (production) or "canary" (a challenger)
    sa.Column("arm", sa.String(12)),
)
#: A shadow challenger's answers, beside production's (same ``prediction_id``).
shadow = sa.Table(
    "shadow_predictions",
    metadata,
    sa.Column("prediction_id", sa.String(32), primary_key=True),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("model_version", sa.String(64), nullable=False, index=True),
    sa.Column("predicted_class", sa.String(8)),
    sa.Column("p_cool", sa.Float),
    sa.Column("p_neutral", sa.Float),
    sa.Column("p_warm", sa.Float),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("error", sa.String(64)),
)
#: Challengers started, removed and stopped automatically, with the reason.
challenger_events = sa.Table(
    "challenger_events",
    metadata,
    sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False, index=True),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("event", sa.String(8), nullable=False),
    sa.Column("reason", sa.String(300), nullable=False),
)
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("feedback_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("prediction_id", sa.String(32), nullable=False, index=True),
    sa.Column("thermal_sensation", sa.Float, nullable=False),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    # matched: its prediction is stored; pending: not yet (answered elsewhere, still spooled);
    # orphaned: still not, past the horizon
    sa.Column("status", sa.String(8), nullable=False, server_default="matched", index=True),
)
#: How far each spool segment has been stored, written in the same transaction as its rows:
#: a segment read again after a crash resumes there, so no row is stored twice.
spool_offsets = sa.Table(
    "spool_offsets",
    metadata,
    sa.Column("segment", sa.String(200), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)
schema = sa.Table("conforto_schema", metadata, sa.Column("version", sa.Integer, primary_key=True))

#: The schema this code writes. Bump it with a migration in :data:`MIGRATIONS`.
SCHEMA_VERSION = 6


def _add_site(conn: sa.Connection) -> None:
    """Version 2: ``predictions.site``, the building or site a caller named."""
    conn.execute(sa.text("ALTER TABLE predictions ADD COLUMN site VARCHAR(100)"))


def _add_status(conn: sa.Connection) -> None:
    """Version 3: ``feedback.status`` (earlier votes were all matched); ``spool_offsets`` is
    new, made by ``create_all``.
    """
    conn.execute(
        sa.text("ALTER TABLE feedback ADD COLUMN status VARCHAR(8) NOT NULL DEFAULT 'matched'")
    )
    conn.execute(sa.text("CREATE INDEX ix_feedback_status ON feedback (status)"))


def _add_sets(conn: sa.Connection) -> None:
    """Version 4: ``predictions.prediction_set`` and its ``coverage`` (null before)."""
    conn.execute(sa.text("ALTER TABLE predictions ADD COLUMN prediction_set VARCHAR(24)"))
    conn.execute(sa.text("ALTER TABLE predictions ADD COLUMN coverage FLOAT"))


def _add_responses(conn: sa.Connection) -> None:
    """Version 5: the occupant responses, ``predictions.p_dissatisfied`` … (null before)."""
    for name in RESPONSE_FIELDS:
        conn.execute(sa.text(f"ALTER TABLE predictions ADD COLUMN {name} FLOAT"))


def _add_arm(conn: sa.Connection) -> None:
    """Version 6: ``predictions.arm`` (null before: production answered); the challenger's
    tables are new, made by ``create_all``.
    """
    conn.execute(sa.text("ALTER TABLE predictions ADD COLUMN arm VARCHAR(12)"))


#: ``MIGRATIONS[n]`` moves a database from version ``n`` to ``n + 1``.
MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {
    1: _add_site,
    2: _add_status,
    3: _add_sets,
    4: _add_responses,
    5: _add_arm,
}


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
        if before:  # a new database was just created in the latest schema
            for version in range(before, SCHEMA_VERSION):
                MIGRATIONS[version](conn)
        if before < SCHEMA_VERSION:
            conn.execute(sa.delete(schema))
            conn.execute(sa.insert(schema).values(version=SCHEMA_VERSION))
    return before


def _columns(rows: Sequence[Row], **extra: str) -> list[dict[str, Any]]:
    """Rows of one type as their table's columns (a datetime for ``created``), with ``extra``
    columns of the same value in every row.
    """
    return [
        dict(
            zip(FIELDS[type(r)], values(r), strict=True),
            created=datetime.fromtimestamp(r.created, UTC),
            **extra,
        )
        for r in rows
    ]


class LogDatabase:
    """The prediction log's tables in one database, created (or migrated) on first use.

    Parameters
    ----------
    url
        SQLAlchemy database URL, e.g. ``sqlite:///predictions.db`` or
        ``postgresql+psycopg://user@host/db``.

    Raises
    ------
    ConfigError
        When the URL cannot be parsed or its database driver is not installed.
    """

    def __init__(self, url: str) -> None:
        try:
            self.engine = sa.create_engine(url, pool_pre_ping=True)
        except (sa.exc.ArgumentError, ImportError) as exc:  # NoSuchModuleError is both
            raise ConfigError(
                f"the prediction log's URL cannot be used ({exc}): set CONFORTO_SERVE__LOG_URL "
                "to a SQLAlchemy URL, e.g. sqlite:///predictions.db or "
                "postgresql+psycopg://user@host/db"
            ) from None
        self._migrated = False
        self._lock = threading.Lock()

    def _ensure_schema(self) -> None:
        with self._lock:  # two threads may both get here first
            if not self._migrated:
                migrate(self.engine)
                self._migrated = True

    def write(self, batch: Sequence[Row], position: tuple[str, int] | None = None) -> None:
        """Store spooled rows in one transaction: predictions, then votes (``pending``, and
        ``matched`` at once when their prediction is stored), then ``position``.

        Predictions already stored are skipped (their ids are keys), so rows read twice are
        stored once.

        Parameters
        ----------
        batch
            The rows, as :mod:`.spool` holds them.
        position
            The spool segment they come from and the byte they end at, stored with them.

        Raises
        ------
        LogUnavailable
            When the database refuses; nothing of the batch is stored.
        """
        made = [r for r in batch if isinstance(r, PredictionRow)]
        votes = [r for r in batch if isinstance(r, VoteRow)]
        shadowed = [r for r in batch if isinstance(r, ShadowRow)]
        events = [r for r in batch if isinstance(r, EventRow)]
        with _unavailable():
            self._ensure_schema()
            try:
                self._insert(made, votes, position, shadowed, events)
            except sa.exc.IntegrityError:
                stored = self._stored([row.prediction_id for row in made])
                seen = self._stored([row.prediction_id for row in shadowed], shadow)
                if not stored and not seen:
                    raise
                fresh = [row for row in made if row.prediction_id not in stored]
                fresh_shadow = [row for row in shadowed if row.prediction_id not in seen]
                self._insert(fresh, votes, position, fresh_shadow, events)

    def _insert(
        self,
        made: list[PredictionRow],
        votes: list[VoteRow],
        position: tuple[str, int] | None,
        shadowed: list[ShadowRow],
        events: list[EventRow],
    ) -> None:
        with self.engine.begin() as conn:
            for table, rows in (
                (predictions, _columns(made)),
                (shadow, _columns(shadowed)),
                (challenger_events, _columns(events)),
                (feedback, _columns(votes, status="pending")),
            ):
                if rows:
                    conn.execute(sa.insert(table), rows)
            if made or votes:
                landed = sa.exists().where(predictions.c.prediction_id == feedback.c.prediction_id)
                conn.execute(
                    sa.update(feedback)
                    .where(feedback.c.status == "pending", landed)
                    .values(status="matched")
                )
            if position is not None:
                segment, end = position
                moved = conn.execute(
                    sa.update(spool_offsets)
                    .where(spool_offsets.c.segment == segment)
                    .values(position=end)
                )
                if moved.rowcount == 0:
                    conn.execute(sa.insert(spool_offsets).values(segment=segment, position=end))

    def _stored(self, prediction_ids: list[str], table: sa.Table = predictions) -> set[str]:
        query = sa.select(table.c.prediction_id).where(table.c.prediction_id.in_(prediction_ids))
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def positions(self, segments: Sequence[str]) -> dict[str, int]:
        """How far each of these spool segments is stored [bytes] (absent: nothing yet).

        Raises
        ------
        LogUnavailable
            When the database cannot be asked.
        """
        query = sa.select(spool_offsets).where(spool_offsets.c.segment.in_(list(segments)))
        with _unavailable():
            self._ensure_schema()
            with self.engine.connect() as conn:
                return {row.segment: int(row.position) for row in conn.execute(query)}

    def forget(self, segment: str) -> None:
        """Drop a deleted segment's position.

        Raises
        ------
        LogUnavailable
            When the database refuses.
        """
        with _unavailable(), self.engine.begin() as conn:
            conn.execute(sa.delete(spool_offsets).where(spool_offsets.c.segment == segment))

    def settle(self, horizon: float) -> int:
        """Match the pending votes whose prediction has landed, then mark as orphaned those
        still pending ``horizon`` seconds after they came.

        Each store matches the votes it can see, but two writers committing at the same moment
        (a prediction through one instance, its vote through another) each miss the other's
        rows: the vote would wait for the next write, or be orphaned. Settling matches it.

        Returns
        -------
        int
            Votes orphaned now.

        Raises
        ------
        LogUnavailable
            When the database refuses.
        """
        cutoff = datetime.fromtimestamp(time.time() - horizon, UTC)
        landed = sa.exists().where(predictions.c.prediction_id == feedback.c.prediction_id)
        with _unavailable():
            self._ensure_schema()
            with self.engine.begin() as conn:
                conn.execute(
                    sa.update(feedback)
                    .where(feedback.c.status == "pending", landed)
                    .values(status="matched")
                )
                done = conn.execute(
                    sa.update(feedback)
                    .where(feedback.c.status == "pending", feedback.c.created < cutoff)
                    .values(status="orphaned")
                )
                return int(done.rowcount)

    def has_prediction(self, prediction_id: str) -> bool:
        """Whether a prediction is stored.

        Raises
        ------
        LogUnavailable
            When the database cannot be asked.
        """
        with _unavailable():
            self._ensure_schema()
            return bool(self._stored([prediction_id]))

    def closing(self) -> LogDatabase:
        """The same database, for the final flush."""
        return self

    def close(self) -> None:
        """Close the database connections."""
        self.engine.dispose()


@contextmanager
def _unavailable() -> Iterator[None]:
    """Turn the database's errors into :class:`LogUnavailable` with a one-line reason."""
    try:
        yield
    except (sa.exc.SQLAlchemyError, ConfortoError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise LogUnavailable(f"{type(exc).__name__}: {reason}") from exc
