"""The prediction log on a real SQLite file and a real PostgreSQL server, written from this
process and from a child process."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conforto.errors import ConfigError
from conforto.serving.logdb import (
    SCHEMA_VERSION,
    LogDatabase,
    feedback,
    migrate,
    predictions,
    schema,
)
from conforto.serving.logprocess import LogProcess
from conforto.serving.predlog import (
    LogCounters,
    LogUnavailable,
    PredictionLog,
    queued_prediction,
)
from tests.helpers import table_rows

pytestmark = pytest.mark.integration


def _prediction(label: str = "warm") -> dict[str, Any]:
    return {
        "prediction_id": uuid.uuid4().hex,
        "predicted_class": label,
        "probabilities": {"cool": 0.1, "neutral": 0.3, "warm": 0.6},
        "model_version": "3",
        "pmv": 1.2,
    }


@pytest.fixture(params=["database", "process"])
def sink(request: pytest.FixtureRequest) -> Any:
    """Make the log's sink for a URL: the database in this process, or in a child process."""
    return LogDatabase if request.param == "database" else LogProcess


def _wait_empty(store: PredictionLog, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while store.buffered and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.buffered == 0, f"{store.buffered} rows still buffered"


def test_round_trip_keeps_every_vote(log_url: str, sink: Any) -> None:
    store = PredictionLog(sink(log_url), interval=0.05).start()
    first, second = _prediction(), _prediction("cool")
    assert store.add_prediction(first, {"ta": 30.0, "rh": 60.0}, latency_ms=2.5)
    assert store.add_prediction(second, {"ta": 18.0}, latency_ms=1.0)
    assert store.known(first["prediction_id"])  # still in the buffer
    assert store.add_feedback(first["prediction_id"], 1.5)
    assert store.add_feedback(first["prediction_id"], 2.0)  # a second vote is a second row
    _wait_empty(store)
    assert store.known(second["prediction_id"])  # now from the database
    assert not store.known(uuid.uuid4().hex)
    assert store.close() == 0

    stored = {r["prediction_id"]: r for r in table_rows(log_url, predictions)}
    assert set(stored) == {first["prediction_id"], second["prediction_id"]}
    row = stored[first["prediction_id"]]
    assert row["inputs"] == {"ta": 30.0, "rh": 60.0}
    assert (row["predicted_class"], row["p_warm"], row["latency_ms"]) == ("warm", 0.6, 2.5)
    votes = sorted(r["thermal_sensation"] for r in table_rows(log_url, feedback))
    assert votes == [1.5, 2.0]


def test_close_flushes_what_is_buffered(log_url: str, sink: Any) -> None:
    store = PredictionLog(sink(log_url), interval=30.0)  # the writer thread is never started
    for _ in range(1200):
        store.add_prediction(_prediction(), {"ta": 22.0}, latency_ms=1.0)
    assert store.close() == 0
    assert len(table_rows(log_url, predictions)) == 1200


def test_schema_is_created_once_and_versioned(log_url: str) -> None:
    engine = sa.create_engine(log_url)
    assert migrate(engine) == 0
    assert migrate(engine) == SCHEMA_VERSION  # idempotent
    with engine.begin() as conn:
        conn.execute(sa.update(schema).values(version=SCHEMA_VERSION + 1))
    with pytest.raises(ConfigError, match="newer than this conforto"):
        migrate(engine)
    engine.dispose()


def test_a_version_1_log_is_migrated_and_keeps_its_rows(log_url: str) -> None:
    engine = sa.create_engine(log_url)
    migrate(engine)
    old, first = _prediction(), LogDatabase(log_url)
    first.write([queued_prediction(old, {"ta": 20.0}, 1.0)])
    first.close()
    with engine.begin() as conn:  # as conforto 0.1 left it: no site, schema version 1
        conn.execute(sa.text("ALTER TABLE predictions DROP COLUMN site"))
        conn.execute(sa.update(schema).values(version=1))
    assert migrate(engine) == 1
    new = _prediction()
    database = LogDatabase(log_url)
    database.write([queued_prediction(new, {"ta": 21.0}, 1.0, "bloco B")])
    database.close()
    engine.dispose()
    sites = {r["prediction_id"]: r["site"] for r in table_rows(log_url, predictions)}
    assert sites == {old["prediction_id"]: None, new["prediction_id"]: "bloco B"}


def test_database_down_keeps_rows_then_writes_them(postgres: Any, sink: Any) -> None:
    events: dict[str, int] = {"failed": 0, "dropped": 0}
    counters = LogCounters(
        failed=lambda: events.__setitem__("failed", events["failed"] + 1),
        dropped=lambda: events.__setitem__("dropped", events["dropped"] + 1),
    )
    store = PredictionLog(sink(postgres.url), capacity=50, interval=0.05, counters=counters)
    store.start()
    store.add_prediction(_prediction(), {"ta": 20.0}, latency_ms=1.0)
    _wait_empty(store)
    postgres.stop()
    kept = [_prediction() for _ in range(60)]
    accepted = [store.add_prediction(p, {"ta": 25.0}, latency_ms=1.0) for p in kept]
    assert accepted.count(True) == 50  # the buffer holds 50 rows ...
    assert events["dropped"] == store.dropped == 10  # ... and counts what it could not hold
    deadline = time.monotonic() + 20
    while not events["failed"] and time.monotonic() < deadline:  # the writer tries, and fails
        time.sleep(0.05)
    assert events["failed"] >= 1
    assert store.buffered == 50
    with pytest.raises(LogUnavailable, match="OperationalError"):
        store.known(uuid.uuid4().hex)  # the service answers 503, not 404, then
    postgres.start()
    _wait_empty(store)
    assert store.close() == 0
    ids = {r["prediction_id"] for r in table_rows(postgres.url, predictions)}
    assert {p["prediction_id"] for p in kept[:50]} <= ids
    assert len(ids) == 51


def test_writer_process_that_dies_is_started_again_and_nothing_is_lost(log_url: str) -> None:
    process = LogProcess(log_url)
    store = PredictionLog(process, interval=0.05).start()
    store.add_prediction(_prediction(), {"ta": 21.0}, latency_ms=1.0)
    _wait_empty(store)
    first = process.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    later = [_prediction() for _ in range(20)]
    for p in later:
        store.add_prediction(p, {"ta": 23.0}, latency_ms=1.0)
    _wait_empty(store)
    assert store.failures >= 1  # the dead child's pipe failed one write; the rows waited
    assert process.pid not in (None, first)
    assert store.close() == 0
    ids = {r["prediction_id"] for r in table_rows(log_url, predictions)}
    assert {p["prediction_id"] for p in later} <= ids
    assert len(ids) == 21


def test_writer_process_exits_on_close_and_the_last_rows_go_through_this_process(
    tmp_path: Path,
) -> None:
    process = LogProcess(f"sqlite:///{tmp_path / 'log.db'}")
    assert not process.has_prediction(uuid.uuid4().hex)
    pid = process.pid
    assert pid is not None
    final = process.closing()  # at the lowest priority, the child would flush last on a busy CPU
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert process.pid is None
    assert isinstance(final, LogDatabase)
    final.close()


def _refused(store: PredictionLog, reason: str) -> None:
    """One row, one write refused for ``reason``; the row stays for the next try."""
    store.add_prediction(_prediction(), {"ta": 22.0}, latency_ms=1.0)
    with pytest.raises(LogUnavailable, match=reason):
        store.flush()
    assert store.buffered == 1
    assert store.close(timeout=0.1) == 1


@pytest.mark.parametrize("url", ["not a url", "nosuchdialect://host/db"])
def test_unusable_url_names_the_setting(url: str) -> None:
    with pytest.raises(ConfigError, match="CONFORTO_SERVE__LOG_URL"):
        LogDatabase(url)
    # in the child process, every call says so until the settings are fixed
    _refused(PredictionLog(LogProcess(url), interval=30.0), "CONFORTO_SERVE__LOG_URL")


def test_unreachable_database_keeps_the_rows(sink: Any) -> None:
    url = "sqlite:////nonexistent-folder/sub/log.db"
    _refused(PredictionLog(sink(url), interval=30.0), "OperationalError")


def test_a_batch_stored_twice_keeps_one_copy(log_url: str) -> None:
    # The writer process may die after committing a batch but before saying so: the batch
    # comes again, with the rows that arrived since.
    database = LogDatabase(log_url)
    first = [queued_prediction(_prediction(), {"ta": 20.0}, 1.0) for _ in range(3)]
    later = [queued_prediction(_prediction(), {"ta": 21.0}, 1.0)]
    database.write(first)
    database.write([*first, *later])
    database.close()
    stored = [r["prediction_id"] for r in table_rows(log_url, predictions)]
    assert sorted(stored) == sorted(values[0] for _, values in [*first, *later])
