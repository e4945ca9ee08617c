"""The prediction log on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from conforto.errors import ConfigError
from conforto.serving.predlog import (
    SCHEMA_VERSION,
    LogCounters,
    PredictionLog,
    feedback,
    migrate,
    predictions,
    schema,
)
from tests.conftest import table_rows

pytestmark = pytest.mark.integration


def _prediction(label: str = "warm") -> dict[str, Any]:
    return {
        "prediction_id": uuid.uuid4().hex,
        "predicted_class": label,
        "probabilities": {"cool": 0.1, "neutral": 0.3, "warm": 0.6},
        "model_version": "3",
        "pmv": 1.2,
    }


def _wait_empty(store: PredictionLog, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while store.buffered and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.buffered == 0, f"{store.buffered} rows still buffered"


def test_round_trip_keeps_every_vote(log_url: str) -> None:
    store = PredictionLog(log_url, interval=0.05).start()
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


def test_close_flushes_what_is_buffered(log_url: str) -> None:
    store = PredictionLog(log_url, interval=30.0)  # the writer thread is never started
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


def test_database_down_keeps_rows_then_writes_them(postgres: Any) -> None:
    events: dict[str, int] = {"failed": 0, "dropped": 0}
    counters = LogCounters(
        failed=lambda: events.__setitem__("failed", events["failed"] + 1),
        dropped=lambda: events.__setitem__("dropped", events["dropped"] + 1),
    )
    store = PredictionLog(postgres.url, capacity=50, interval=0.05, counters=counters).start()
    store.add_prediction(_prediction(), {"ta": 20.0}, latency_ms=1.0)
    _wait_empty(store)
    postgres.stop()
    kept = [_prediction() for _ in range(60)]
    accepted = [store.add_prediction(p, {"ta": 25.0}, latency_ms=1.0) for p in kept]
    assert accepted.count(True) == 50  # the buffer holds 50 rows ...
    assert events["dropped"] == store.dropped == 10  # ... and counts what it could not hold
    time.sleep(0.5)
    assert events["failed"] >= 1
    assert store.buffered == 50
    with pytest.raises(sa.exc.OperationalError):
        store.known(uuid.uuid4().hex)  # the service answers 503, not 404, then
    postgres.start()
    _wait_empty(store)
    assert store.close() == 0
    ids = {r["prediction_id"] for r in table_rows(postgres.url, predictions)}
    assert {p["prediction_id"] for p in kept[:50]} <= ids
    assert len(ids) == 51
