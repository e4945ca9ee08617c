"""What a monitor judges: rows from a file, or a time window of the prediction log.

The log is read with indexed time queries (``created``, then the id for ties) in chunks of a
bounded size, so memory stays flat however long the window.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from conforto._data.load import load_dataset, with_month
from conforto._predictions.records import OCCUPANT
from conforto._predictions.schema import feedback, migrate, predictions
from conforto.errors import ConfigError, LogUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

#: Rows read from the log per query.
CHUNK_ROWS = 50_000
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|h|d|w)\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """A point in time: a duration ago (``30m``, ``12h``, ``7d``, ``2w``) or an ISO date/time.

    Parameters
    ----------
    text
        What the user typed.
    now
        The present (default: now, UTC).

    Returns
    -------
    datetime.datetime
        Timezone-aware, UTC (an ISO time without a zone is taken as UTC).

    Raises
    ------
    ConfigError
        When ``text`` is neither.

    Examples
    --------
    >>> parse_when("7d", datetime(2026, 11, 29, tzinfo=UTC)).isoformat()
    '2026-11-22T00:00:00+00:00'
    >>> parse_when("2026-11-01").isoformat()
    '2026-11-01T00:00:00+00:00'
    """
    now = now or datetime.now(UTC)
    found = _DURATION.match(text)
    if found:
        return now - timedelta(**{_UNITS[found.group(2)]: float(found.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{text!r} is not a time: write a duration ago (30m, 12h, 7d, 2w) or an ISO date "
            "or time (2026-11-01, 2026-11-01T08:00)."
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass(frozen=True)
class Span:
    """A time window of the prediction log: ``start <= created < end``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        """Refuse an empty or reversed span."""
        if self.start >= self.end:
            raise ConfigError(
                f"the window starts ({self.start.isoformat()}) at or after it ends "
                f"({self.end.isoformat()}): --since must be earlier than --until."
            )

    @classmethod
    def parse(cls, since: str, until: str | None = None) -> Span:
        """A span from the command line's ``--since`` and ``--until`` (default: now)."""
        now = datetime.now(UTC)
        return cls(parse_when(since, now), parse_when(until, now) if until else now)


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored in UTC); PostgreSQL aware ones."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@contextmanager
def log_connection(url: str) -> Iterator[sa.Connection]:
    """A connection to the prediction log, its tables made first: a log nothing was written to
    yet reads as empty (quiet, not broken). Database errors become :class:`LogUnavailable`.
    """
    engine = sa.create_engine(url)
    try:
        database = engine.url.database
        if engine.url.get_backend_name() == "sqlite" and database not in (None, "", ":memory:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)  # a home not made yet
        migrate(engine)
        with engine.connect() as conn:
            yield conn
    except OSError as exc:
        raise LogUnavailable(f"cannot read the prediction log: {exc}") from None
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise LogUnavailable(f"cannot read the prediction log: {reason}") from None
    finally:
        engine.dispose()


def read_predictions(
    url: str,
    span: Span,
    *,
    chunk_rows: int = CHUNK_ROWS,
    on_chunk: Callable[[int], None] | None = None,
) -> Iterator[pd.DataFrame]:
    """The occupants' logged predictions of a span (those the explorer, a smoke test or a
    shadow copy asked for left out), oldest first, in frames of at most ``chunk_rows``.

    Each frame has the predictions' columns (``prediction_id``, ``created`` as UTC, the model
    version, class and probabilities, ``pmv``), their inputs as columns, and ``month``.

    Parameters
    ----------
    url
        The prediction log's database (SQLAlchemy URL).
    span
        The time window.
    chunk_rows
        Rows per query.
    on_chunk
        Called with the rows of each frame (progress display).

    Raises
    ------
    LogUnavailable
        When the database cannot be read.
    """
    columns = [c for c in predictions.c if c.name not in ("latency_ms",)]
    last: tuple[datetime, str] | None = None
    while True:
        query = sa.select(*columns).where(
            predictions.c.created >= span.start,
            predictions.c.created < span.end,
            predictions.c.kind == OCCUPANT,
        )
        if last is not None:
            query = query.where(
                sa.tuple_(predictions.c.created, predictions.c.prediction_id) > last
            )
        query = query.order_by(predictions.c.created, predictions.c.prediction_id)
        with log_connection(url) as conn:  # not held while the caller works on a chunk
            rows = conn.execute(query.limit(chunk_rows)).all()
        if not rows:
            return
        last = (rows[-1].created, rows[-1].prediction_id)
        if on_chunk is not None:
            on_chunk(len(rows))
        yield _frame(rows)
        if len(rows) < chunk_rows:
            return


def _frame(rows: Sequence[sa.Row[Any]]) -> pd.DataFrame:
    head = pd.DataFrame([r._mapping for r in rows]).drop(columns="inputs")
    head["created"] = pd.to_datetime([_utc(r.created) for r in rows], utc=True)
    inputs = pd.DataFrame.from_records([r.inputs for r in rows])
    inputs = inputs.drop(columns=[c for c in inputs.columns if c in head.columns])
    frame = pd.concat([head, inputs], axis=1)
    frame["month"] = frame["created"].dt.month
    return frame


def read_votes(url: str, prediction_ids: list[str], until: datetime | None = None) -> pd.DataFrame:
    """The feedback votes given for some predictions: ``prediction_id``, ``thermal_sensation``
    (the latest vote, when several came; of those given before ``until`` when given).

    Raises
    ------
    LogUnavailable
        When the database cannot be read.
    """
    found: list[sa.Row[Any]] = []
    with log_connection(url) as conn:
        for start in range(0, len(prediction_ids), 10_000):
            batch = prediction_ids[start : start + 10_000]
            query = (
                sa.select(feedback.c.prediction_id, feedback.c.thermal_sensation)
                .where(feedback.c.prediction_id.in_(batch))
                .order_by(feedback.c.created)
            )
            if until is not None:
                query = query.where(feedback.c.created < until)
            found.extend(conn.execute(query).all())
    votes = pd.DataFrame(found, columns=["prediction_id", "thermal_sensation"])
    return votes.drop_duplicates("prediction_id", keep="last")


def read_file(path: Path, metadata: Path | None = None) -> pd.DataFrame:
    """Rows from a file in the database's format (any resolvable column names), joined with
    their buildings' metadata when given; ``month`` from ``timestamp`` when it has one.
    """
    return with_month(load_dataset(path, metadata, required=()).frame)


#: Where a sample came from, for the reports: ``source``, ``from`` and ``until`` (ISO 8601, or
#: ``None``), and what a monitor adds (``rows``, ``season_matched``).
Described = dict[str, str | int | bool | None]


@dataclass(frozen=True)
class FileSource:
    """Rows of a file (``--input``), with their buildings' metadata when given."""

    path: Path
    metadata: Path | None = None

    def describe(self) -> Described:
        """Where the rows came from, for the reports."""
        return {"source": f"file:{self.path}", "from": None, "until": None}

    def frames(self, on_chunk: Callable[[int], None] | None = None) -> Iterator[pd.DataFrame]:
        """The file's rows, as one frame."""
        frame = read_file(self.path, self.metadata)
        if on_chunk is not None:
            on_chunk(len(frame))
        yield frame


@dataclass(frozen=True)
class LogSource:
    """The predictions the service logged in a time window."""

    url: str
    span: Span

    def describe(self) -> Described:
        """Where the rows came from, for the reports."""
        return {
            "source": "prediction_log",
            "from": self.span.start.isoformat(timespec="seconds"),
            "until": self.span.end.isoformat(timespec="seconds"),
        }

    def frames(self, on_chunk: Callable[[int], None] | None = None) -> Iterator[pd.DataFrame]:
        """The window's predictions, oldest first, in bounded chunks."""
        return read_predictions(self.url, self.span, on_chunk=on_chunk)


@dataclass(frozen=True)
class FrameSource:
    """Rows already in memory (the training data the pipeline just loaded)."""

    frame: pd.DataFrame
    name: str = "data"

    def describe(self) -> Described:
        """Where the rows came from, for the reports."""
        return {"source": self.name, "from": None, "until": None}

    def frames(
        self,
        on_chunk: Callable[[int], None] | None = None,  # noqa: ARG002 - one chunk, no progress
    ) -> Iterator[pd.DataFrame]:
        """The rows, with ``month`` from ``timestamp`` when they have one."""
        yield with_month(self.frame)


Source = FileSource | LogSource | FrameSource


def quiet_reason(source: LogSource) -> str:
    """Why a window of the log has nothing to judge, as the monitors say it."""
    described = source.describe()
    return (
        f"quiet: no prediction in the prediction log from {described['from']} to "
        f"{described['until']} (none logged yet, or no traffic): nothing to judge."
    )
