"""An answered prediction is never lost: ``conforto serve`` under 64 connections, then
``kill -9`` of the service with all its processes, of one worker, or of the log's writer, at a
random moment. Every prediction id a client received must end up in the database, and every
vote the service accepted exactly once."""

from __future__ import annotations

import http.client
import json
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa

from conforto._predictions.schema import feedback, predictions
from conforto._settings import get_settings
from tests.factories import table_rows
from tests.processes import wait_for_more

if TYPE_CHECKING:
    from tests.processes import Server

pytestmark = pytest.mark.integration
ROOM = json.dumps({"ta": 24.0, "rh": 50.0, "vel": 0.1, "met": 1.1, "clo": 0.6}).encode()
HEADERS = {"content-type": "application/json"}


class Load:
    """``connections`` keep-alive clients posting ``/predict`` until stopped, each voting for
    every 20th prediction it got; they reconnect after errors (a restarted worker)."""

    def __init__(self, url: str, connections: int = 64) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.received: list[str] = []
        self.votes_sent: Counter[str] = Counter()
        self.votes_accepted: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, daemon=True) for _ in range(connections)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _post(
        self, conn: http.client.HTTPConnection, path: str, body: bytes, client: str = ""
    ) -> Any:
        conn.request("POST", path, body, {**HEADERS, "X-Client-Id": client} if client else HEADERS)
        response = conn.getresponse()
        return response.status, response.read()

    def _client(self) -> None:
        conn = http.client.HTTPConnection(*self.address, timeout=10)
        answered = 0
        while not self._stop.is_set():
            try:
                status, body = self._post(conn, "/predict", ROOM)
                if status != 200:
                    continue
                prediction_id = json.loads(body)["prediction_id"]
                with self._lock:
                    self.received.append(prediction_id)
                answered += 1
                if answered % 20 == 0:
                    with self._lock:
                        self.votes_sent[prediction_id] += 1
                    vote = json.dumps({"prediction_id": prediction_id, "thermal_sensation": 1})
                    # each vote an occupant's own (one client's votes are rate-limited)
                    status, _ = self._post(conn, "/feedback", vote.encode(), prediction_id)
                    if status in (201, 202):
                        with self._lock:
                            self.votes_accepted[prediction_id] += 1
            except (OSError, http.client.HTTPException):
                conn.close()
                self._stop.wait(0.05)
        conn.close()


def _writers(server: Server) -> list[int]:
    """The log writer processes under the server (one per worker)."""
    found, todo = [], server.children()
    while todo:
        pid = todo.pop()
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"conforto._predictions.writer" in command:
            found.append(pid)
        todo += server.children(pid)
    return found


def _one_writer(server: Server, not_in: list[int], timeout: float = 10.0) -> list[int]:
    """The server's writer process, once it is one not in ``not_in``."""
    deadline = time.monotonic() + timeout
    while (found := _writers(server)) in ([], *([pid] for pid in not_in)):
        if time.monotonic() >= deadline:  # what the service said, to tell why
            raise AssertionError(f"no writer process; the service said:\n{server.stop()[-4000:]}")
        time.sleep(0.1)
    return found


def _kill(pid: int) -> None:
    import os

    os.kill(pid, signal.SIGKILL)


def _stored(url: str) -> tuple[Counter[str], Counter[str]]:
    return (
        Counter(r["prediction_id"] for r in table_rows(url, predictions)),
        Counter(r["prediction_id"] for r in table_rows(url, feedback)),
    )


def _wait_stored(url: str, ids: list[str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if set(ids) <= set(_stored(url)[0]):
                return
        except sa.exc.DBAPIError:  # the tables may not exist yet
            pass
        time.sleep(0.2)


def _check(load: Load, url: str) -> None:
    """Every id received stored once; every vote accepted stored, none more than sent."""
    made, votes = _stored(url)
    missing = set(load.received) - set(made)
    assert not missing, f"{len(missing)} of {len(load.received)} answered predictions lost"
    assert max(made.values()) == 1
    assert len(load.received) == len(set(load.received))
    for prediction_id, accepted in load.votes_accepted.items():
        assert accepted <= votes[prediction_id] <= load.votes_sent[prediction_id]
    assert sum(load.votes_accepted.values()) > 0


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """The moments of the kills: drawn from ``--seed`` when given, else from a new seed, printed
    (shown with a failure) so that ``pytest --seed N`` repeats it."""
    seed = request.config.getoption("seed")
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 30)
    print(f"{request.node.name}: seed {seed} (repeat with --seed {seed})")
    return random.Random(seed)  # noqa: S311 - timing, not secrets


def test_kill_9_of_the_service_and_all_its_processes_loses_no_answer(
    serve: Any, trained_model: Path, rng: random.Random
) -> None:
    server = serve("--model", str(trained_model))
    with Load(server.url) as load:
        wait_for_more(load.received, 500)
        wait_for_more(load.votes_accepted, 1)  # votes under way too
        time.sleep(rng.uniform(0.0, 2.0))  # a random moment under load
        server.kill_all()  # the service and its writer, at once: an OOM kill of the container
    url = get_settings().prediction_log_url
    again = serve("--model", str(trained_model))  # the next start stores what was left
    _wait_stored(url, load.received)
    again.stop()
    _check(load, url)


def test_kill_9_of_one_worker_loses_no_answer(
    serve: Any, trained_model: Path, rng: random.Random
) -> None:
    server = serve("--model", str(trained_model), "--workers", "2")
    with Load(server.url) as load:
        wait_for_more(load.received, 300)
        wait_for_more(load.votes_accepted, 1)  # votes under way too
        time.sleep(rng.uniform(0.0, 1.5))  # a random moment under load
        worker = rng.choice([pid for pid in server.children() if server.children(pid)])
        _kill(worker)  # its writer stays: it stores what the worker left, then exits
        wait_for_more(load.received, 300)  # the other worker answers; uvicorn starts a new one
    url = get_settings().prediction_log_url
    server.stop()
    _wait_stored(url, load.received)
    _check(load, url)


def test_kill_9_of_the_writer_loses_no_answer_and_stores_nothing_twice(
    serve: Any, trained_model: Path, rng: random.Random
) -> None:
    server = serve("--model", str(trained_model))
    killed: list[int] = []
    with Load(server.url) as load:
        wait_for_more(load.votes_accepted, 1)  # votes under way too
        for _ in range(2):
            wait_for_more(load.received, 200)
            time.sleep(rng.uniform(0.0, 1.0))  # a random moment under load
            (writer,) = _one_writer(server, not_in=killed)
            _kill(writer)  # maybe inside a transaction: it is rolled back, and done again
            killed.append(writer)
        _one_writer(server, not_in=killed)  # the service starts a new one within seconds
    url = get_settings().prediction_log_url
    server.stop()
    _wait_stored(url, load.received)
    _check(load, url)


def test_a_vote_sent_to_another_instance_10_ms_later_is_accepted_and_joined(
    serve: Any, trained_model: Path, postgres: Any, tmp_path: Path
) -> None:
    shared = {"CONFORTO_SERVE__LOG_URL": postgres.url}
    a = serve(
        "--model",
        str(trained_model),
        env={**shared, "CONFORTO_SERVE__SPOOL_DIR": str(tmp_path / "a")},
    )
    b = serve(
        "--model",
        str(trained_model),
        env={**shared, "CONFORTO_SERVE__SPOOL_DIR": str(tmp_path / "b")},
    )
    statuses: Counter[int | str] = Counter()
    ids = []
    with httpx.Client() as client:
        for _ in range(20):
            answer = client.post(f"{a.url}/predict", content=ROOM, headers=HEADERS).json()
            time.sleep(0.01)
            vote = {"prediction_id": answer["prediction_id"], "thermal_sensation": -1}
            response = client.post(f"{b.url}/feedback", json=vote)
            assert response.status_code in (201, 202), response.text
            statuses[response.json()["status"]] += 1
            ids.append(answer["prediction_id"])
    assert statuses["pending"] > 0  # the case at stake: B could not find it yet
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = table_rows(postgres.url, feedback)
        if len(rows) == 20 and {r["status"] for r in rows} == {"matched"}:
            break
        time.sleep(0.2)
    assert sorted(r["prediction_id"] for r in rows) == sorted(ids)
    assert {r["status"] for r in rows} == {"matched"}  # joined to their predictions
    assert set(ids) <= set(_stored(postgres.url)[0])
