"""The prediction log on a real SQLite file and a real PostgreSQL server: the spool on disk,
the writer child process, the drain, the schema."""

from __future__ import annotations

import marshal
import os
import signal
import subprocess
import sys
import time
import zlib
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from conforto._predictions.answer import Prediction, Preference
from conforto._predictions.drain import Drainer
from conforto._predictions.ids import new_ids
from conforto._predictions.log import PredictionLog
from conforto._predictions.records import PredictionRow, VoteRow, legacy_row
from conforto._predictions.schema import (
    RESPONSE_FIELDS,
    SCHEMA_VERSION,
    ZERO_SHOT_FIELDS,
    feedback,
    migrate,
    predictions,
    schema,
)
from conforto._predictions.spool import HEADER, LEGACY_MAGIC, Spool, frames, segments
from conforto._predictions.store import LogDatabase
from conforto._predictions.writer import LogProcess
from conforto.errors import ConfigError, LogUnavailable
from tests.factories import answer, table_rows

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def _prediction(label: str = "warm", now: float | None = None) -> Prediction:
    return answer(label, new_ids(1, now)[0])


def _row(
    prediction: Prediction, inputs: dict[str, float], site: str | None = None
) -> PredictionRow:
    return PredictionRow.of(prediction, inputs, 1.0, site, now=time.time())


def _log(url: str, folder: Path, **options: Any) -> PredictionLog:
    """A service's prediction log: its spool in ``folder``, the writer in a child process."""
    spool = Spool(folder, max_bytes=options.pop("max_bytes", 1 << 30))
    writer = LogProcess(url, folder, spool.owner, max_bytes=spool.segment_bytes * 16, **options)
    return PredictionLog(spool, writer.start(), interval=0.1).start()


def _stored_ids(url: str) -> Counter[str]:
    return Counter(r["prediction_id"] for r in table_rows(url, predictions))


def _wait(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except sa.exc.DBAPIError:  # the writer has not made the tables yet
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_round_trip_keeps_every_vote(log_url: str, tmp_path: Path) -> None:
    log = _log(log_url, tmp_path / "spool")
    first, second = _prediction(), _prediction("cool")
    assert log.add_predictions(
        [first, second],
        [{"ta": 30.0, "rh": 60.0}, {"ta": 18.0}],
        [2.5, 1.0],
        ["bloco B", None],
        ["occupant", "explorer"],
    )
    assert log.lookup(first.prediction_id) == "stored"  # spooled here: durable already
    assert log.add_feedback(first.prediction_id, 1.5)
    assert log.add_feedback(first.prediction_id, 2.0)  # a second vote is a second row
    _wait(lambda: len(table_rows(log_url, feedback)) == 2)
    other = PredictionLog(Spool(tmp_path / "other"), log.store)  # another process's view
    assert other.lookup(second.prediction_id) == "stored"  # from the database
    assert other.lookup(new_ids(1, now=1_700_000_000.0)[0]) == "unknown"
    assert log.close()
    other.spool.close()

    stored = {r["prediction_id"]: r for r in table_rows(log_url, predictions)}
    assert set(stored) == {first.prediction_id, second.prediction_id}
    row = stored[first.prediction_id]
    assert row["inputs"] == {"ta": 30.0, "rh": 60.0}
    assert (row["predicted_class"], row["p_warm"], row["latency_ms"], row["site"]) == (
        "warm",
        0.6,
        2.5,
        "bloco B",
    )
    assert [stored[p.prediction_id]["kind"] for p in (first, second)] == ["occupant", "explorer"]
    votes = sorted((r["thermal_sensation"], r["status"]) for r in table_rows(log_url, feedback))
    assert votes == [(1.5, "matched"), (2.0, "matched")]
    assert not list((tmp_path / "spool").glob("*.seg"))  # drained and deleted


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
    first.write(
        [
            _row(old, {"ta": 20.0}),
            VoteRow(old.prediction_id, 1.0, time.time()),
        ]
    )
    first.close()
    with engine.begin() as conn:  # as conforto 0.1 left it: no site, no vote status, version 1
        for name in RESPONSE_FIELDS:
            conn.execute(sa.text(f"ALTER TABLE predictions DROP COLUMN {name}"))
        conn.execute(sa.text("ALTER TABLE predictions DROP COLUMN prediction_set"))
        conn.execute(sa.text("ALTER TABLE predictions DROP COLUMN coverage"))
        conn.execute(sa.text("DROP INDEX ix_feedback_status"))
        conn.execute(sa.text("ALTER TABLE feedback DROP COLUMN status"))
        conn.execute(sa.text("ALTER TABLE predictions DROP COLUMN site"))
        conn.execute(sa.text("ALTER TABLE predictions DROP COLUMN arm"))
        conn.execute(sa.text("ALTER TABLE predictions DROP COLUMN kind"))
        for name in (
            *ZERO_SHOT_FIELDS,
            "adapted_votes",
            "adaptation_version",
            "zero_shot_class",
            "zero_shot_dissatisfied",
        ):
            conn.execute(sa.text(f"ALTER TABLE predictions DROP COLUMN {name}"))
        conn.execute(sa.text("ALTER TABLE feedback DROP COLUMN client"))
        conn.execute(sa.text("DROP TABLE site_adaptations"))
        conn.execute(sa.text("DROP TABLE shadow_predictions"))
        conn.execute(sa.text("DROP TABLE challenger_events"))
        conn.execute(sa.text("DROP TABLE spool_offsets"))
        conn.execute(sa.update(schema).values(version=1))
    assert migrate(engine) == 1
    new = answer(
        "warm",
        new_ids(1)[0],
        prediction_set=("cool", "neutral"),
        coverage=0.9,
        dissatisfied=0.3,
        unacceptable=0.4,
        preference=Preference(0.5, 0.3, 0.2),
    )
    before = _prediction()  # spooled by a conforto without sets (positional), stored after
    spooled_before = legacy_row(
        "predictions",
        (
            before.prediction_id,
            time.time(),
            "3",
            "warm",
            0.1,
            0.3,
            0.6,
            1.2,
            1.0,
            (("ta", 22.0),),
            "bloco C",
        ),
    )
    database = LogDatabase(log_url)
    database.write(
        [_row(new, {"ta": 21.0}, "bloco B"), spooled_before],
        ("a.000000.seg", 99),
    )
    assert database.positions(["a.000000.seg"]) == {"a.000000.seg": 99}
    database.close()
    engine.dispose()
    stored = {
        r["site"]: (r["prediction_set"], r["coverage"]) for r in table_rows(log_url, predictions)
    }
    assert stored == {None: (None, None), "bloco B": ("cool|neutral", 0.9), "bloco C": (None, None)}
    responses = {
        r["site"]: [r[f] for f in RESPONSE_FIELDS] for r in table_rows(log_url, predictions)
    }
    assert responses["bloco B"] == [0.3, 0.4, 0.5, 0.3, 0.2]
    assert responses["bloco C"] == [None] * 5  # spooled before the heads
    assert [r["status"] for r in table_rows(log_url, feedback)] == ["matched"]  # the old vote
    assert {r["kind"] for r in table_rows(log_url, predictions)} == {"occupant"}  # as they were


def _add(log: PredictionLog, made: list[Prediction]) -> bool:
    n = len(made)
    return log.add_predictions(made, [{"ta": 25.0}] * n, [1.0] * n, [None] * n, ["occupant"] * n)


def test_database_down_keeps_rows_on_disk_then_stores_them(postgres: Any, tmp_path: Path) -> None:
    log = _log(postgres.url, tmp_path / "spool")
    made = [_prediction()]
    _add(log, made)
    _wait(lambda: len(table_rows(postgres.url, predictions)) == 1)
    postgres.stop()
    kept = [_prediction() for _ in range(60)]
    assert all(_add(log, [p]) for p in kept)  # answered and spooled, one by one
    _wait(lambda: log.store.status().failures >= 1)  # the writer tries, and fails
    assert log.lookup(new_ids(1)[0]) == "pending"  # a young id needs no database ...
    with pytest.raises(LogUnavailable, match="OperationalError"):
        log.lookup(new_ids(1, now=1_700_000_000.0)[0])  # ... an old one does: 503, not 404
    spooled = sum(
        f.count for p in (tmp_path / "spool").glob("*.seg") for f in frames(p, rows=False)
    )
    assert spooled == 61
    postgres.start()
    _wait(lambda: len(table_rows(postgres.url, predictions)) == 61)
    assert log.close()
    assert _stored_ids(postgres.url) == Counter(p.prediction_id for p in made + kept)


def test_a_killed_writer_is_started_again_and_stores_everything_once(
    log_url: str, tmp_path: Path
) -> None:
    log = _log(log_url, tmp_path / "spool")
    answered: list[str] = []
    for round_ in range(6):
        batch = [_prediction() for _ in range(200)]
        _add(log, batch)
        log.add_feedback(batch[0].prediction_id, 0.5)
        answered += [p.prediction_id for p in batch]
        if round_ in (1, 3):
            pid = log.store.pid  # type: ignore[attr-defined]
            os.kill(pid, signal.SIGKILL)  # at any point of its work
            _wait(lambda pid=pid: log.store.pid not in (None, pid))  # type: ignore[attr-defined]
    _wait(lambda: len(table_rows(log_url, predictions)) == len(answered))
    assert log.close()
    assert _stored_ids(log_url) == Counter(answered)  # every one, none twice
    assert len(table_rows(log_url, feedback)) == 6  # votes too: exactly once


@pytest.mark.parametrize("url", ["not a url", "nosuchdialect://host/db"])
def test_unusable_url_names_the_setting(url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CONFORTO_SERVE__LOG_URL"):
        LogDatabase(url)
    writer = LogProcess(url, tmp_path)  # in the child process, every call says so
    with pytest.raises(LogUnavailable, match="CONFORTO_SERVE__LOG_URL"):
        writer.status()
    assert not writer.close(timeout=1)


def test_a_batch_stored_twice_keeps_one_copy(log_url: str) -> None:
    database = LogDatabase(log_url)
    first = [_row(_prediction(), {"ta": 20.0}) for _ in range(3)]
    later = [_row(_prediction(), {"ta": 21.0})]
    database.write(first)
    database.write([*first, *later])
    database.close()
    stored = [r["prediction_id"] for r in table_rows(log_url, predictions)]
    assert sorted(stored) == sorted(row.prediction_id for row in [*first, *later])


def _spool_rows(folder: Path, predictions_per_frame: int, frames_: int) -> list[str]:
    """A dead process's spool: ``frames_`` frames, each with predictions and a vote."""
    spool = Spool(folder, max_bytes=1 << 16)
    ids = []
    for _ in range(frames_):
        made = [_prediction() for _ in range(predictions_per_frame)]
        rows = [_row(p, {"ta": 22.0}) for p in made]
        spool.append([*rows, VoteRow(made[0].prediction_id, -1.0, time.time())])
        ids += [p.prediction_id for p in made]
    spool.close()
    return ids


def test_a_drain_resumes_where_the_last_one_stored_not_where_it_read(
    log_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "spool"
    ids = _spool_rows(folder, 10, 30)
    database = LogDatabase(log_url)
    first = Drainer(folder, database, batch_rows=55)
    first.step()  # one transaction, then "dies": its positions in memory are gone
    first.close()
    assert 0 < len(table_rows(log_url, predictions)) < len(ids)
    second = Drainer(folder, database, batch_rows=55)
    assert second.drain(timeout=30)
    second.close()
    database.close()
    assert _stored_ids(log_url) == Counter(ids)
    assert len(table_rows(log_url, feedback)) == 30  # not one vote twice
    assert not list(folder.iterdir())  # segments, locks and owner files all gone


def test_a_spool_of_the_previous_format_is_drained_and_an_unreadable_frame_kept(
    log_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A dead owner's segment as conforto 0.1 wrote it (positional rows, marshalled), whose
    last frame this Python cannot read: the rows before it are stored, the segment stays."""
    folder = tmp_path / "spool"
    folder.mkdir()
    old = _prediction()
    values = (old.prediction_id, time.time(), "2", "warm", 0.1, 0.3, 0.6, 1.2, 1.0, (("ta", 22.0),))
    rows = [("predictions", values), ("feedback", (old.prediction_id, 1.0, time.time()))]
    segment = folder / "0000000000001-old-1-abcdef.000000.seg"
    segment.write_bytes(_frame(marshal.dumps(rows)) + _frame(b"\xff\xff"))
    database = LogDatabase(log_url)
    drainer = Drainer(folder, database)
    assert not drainer.drain(timeout=5)  # what it cannot read stays in the backlog
    drainer.drain(timeout=1)
    drainer.close()
    database.close()
    assert _stored_ids(log_url) == Counter([old.prediction_id])
    assert [r["status"] for r in table_rows(log_url, feedback)] == ["matched"]
    assert segment.is_file()
    assert list(drainer.kept) == [segment.name]
    unreadable = [r for r in caplog.records if "the segment is kept" in r.getMessage()]
    assert len(unreadable) == 1  # said once, not at every pass
    assert "previous spool format that this Python cannot read" in unreadable[0].getMessage()


def _frame(payload: bytes) -> bytes:
    """A whole frame of conforto 0.1's format holding ``payload``."""
    return HEADER.pack(LEGACY_MAGIC, len(payload), zlib.crc32(payload), 1) + payload


def test_pending_votes_are_matched_when_their_prediction_lands_or_orphaned(log_url: str) -> None:
    database = LogDatabase(log_url)
    late, never = _prediction(), new_ids(1)[0]
    database.write(
        [
            VoteRow(late.prediction_id, 1.0, time.time()),
            VoteRow(never, 2.0, time.time() - 700),
        ]
    )
    assert sorted(r["status"] for r in table_rows(log_url, feedback)) == ["pending", "pending"]
    database.write([_row(late, {"ta": 22.0})])  # its prediction lands
    assert database.settle(horizon=600) == 1  # the other waited past the horizon
    database.close()
    status = {r["prediction_id"]: r["status"] for r in table_rows(log_url, feedback)}
    assert status == {late.prediction_id: "matched", never: "orphaned"}


def test_settling_matches_a_vote_whose_prediction_landed_in_a_concurrent_write(
    log_url: str,
) -> None:
    """Two writers commit at once, the prediction through one instance and its vote through
    another: neither write saw the other's row, so the vote is pending with its prediction
    stored (as the rows below leave it). Settling matches it, not orphans it."""
    database = LogDatabase(log_url)
    made = _prediction()
    database.write([VoteRow(made.prediction_id, 1.0, time.time() - 700)])
    database.write([_row(made, {"ta": 22.0})])
    engine = sa.create_engine(log_url)
    with engine.begin() as conn:  # as the race leaves it: the prediction's write missed the vote
        conn.execute(sa.update(feedback).values(status="pending"))
    engine.dispose()
    assert [r["status"] for r in table_rows(log_url, feedback)] == ["pending"]
    assert database.settle(horizon=600) == 0  # past the horizon, yet not orphaned
    database.close()
    assert [r["status"] for r in table_rows(log_url, feedback)] == ["matched"]


def test_over_its_bound_the_spool_drops_the_oldest_segments_and_counts_them(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    ids = _spool_rows(folder, 20, 60)  # ~14 segments of 4 KiB
    before = sorted(folder.glob("*.seg"))
    database = LogDatabase("sqlite:////nonexistent-folder/sub/log.db")  # down
    drainer = Drainer(folder, database, max_bytes=5 * 4096)
    assert drainer.step() == 0
    after = sorted(folder.glob("*.seg"))
    assert after == before[len(before) - len(after) :]  # the newest kept
    assert sum(p.stat().st_size for p in after) <= 5 * 4096
    kept = sum(f.count for p in after for f in frames(p, rows=False))
    assert drainer.status.dropped + kept == len(ids) + 60  # every row stored or counted
    assert drainer.status.failures == 1
    drainer.close()


FULL_DISK = """
import resource, signal, sys
from pathlib import Path
from conforto._predictions.records import VoteRow
from conforto._predictions.spool import Spool
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, writes fail with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (6000, 6000))
spool, dropped = Spool(Path(sys.argv[1])), []
spool.dropped = dropped.append
rows = lambda i: [VoteRow("%032x" % (20 * i + j), 0.5, 1.7e9) for j in range(20)]
accepted = sum(spool.append(rows(i)) for i in range(20))
print(accepted, sum(dropped))
"""


def test_a_full_disk_drops_and_counts_rows_and_leaves_whole_frames(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(tmp_path)], capture_output=True, text=True, check=True
    )
    accepted, dropped = map(int, done.stdout.split())
    assert 0 < accepted < 20
    assert dropped == (20 - accepted) * 20
    assert "free disk space" in done.stderr  # one clear line, not one per refused write
    assert done.stderr.count("refused") == 1
    (segment,) = next(iter(segments(tmp_path).values()))
    assert sum(f.count for f in frames(segment)) == accepted * 20  # no torn frame left
