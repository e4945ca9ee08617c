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

from conforto._predictions import adaptations
from conforto._predictions.records import (
    FIELDS,
    EventRow,
    PredictionRow,
    ShadowRow,
    VoteRow,
    values,
)
from conforto._predictions.schema import (
    challenger_events,
    feedback,
    migrate,
    predictions,
    shadow,
    spool_offsets,
)
from conforto.errors import ConfigError, ConfortoError, LogUnavailable

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from conforto._predictions.records import Row
    from conforto._predictions.sites import SiteState, SiteVote


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

    # ------------------------------------------------------------------------ site adaptation

    def stale_sites(self, model_version: str) -> dict[str, int]:
        """See :func:`.adaptations.stale_sites`; :class:`LogUnavailable` when it cannot be
        asked (so for the other site adaptation methods).
        """
        with _unavailable():
            self._ensure_schema()
            with self.engine.connect() as conn:
                return adaptations.stale_sites(conn, model_version)

    def site_votes(self, site: str, up_to: int, per_client: int) -> list[SiteVote]:
        """See :func:`.adaptations.site_votes`."""
        with _unavailable(), self.engine.connect() as conn:
            return adaptations.site_votes(conn, site, up_to, per_client)

    def record_state(self, model_version: str, learned: SiteState) -> bool:
        """Add a state of a site's adaptation; False when another instance recorded it first."""
        with _unavailable():
            try:
                with self.engine.begin() as conn:
                    adaptations.record_state(conn, model_version, learned)
            except sa.exc.IntegrityError:
                return False
        return True

    def site_states(self, model_version: str) -> list[SiteState]:
        """See :func:`.adaptations.current_states`."""
        with _unavailable():
            self._ensure_schema()
            with self.engine.connect() as conn:
                return adaptations.current_states(conn, model_version)

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
