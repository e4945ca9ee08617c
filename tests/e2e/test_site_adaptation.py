"""Site adaptation served: two instances on one PostgreSQL log apply the same adaptation after
votes arrive at either, over real HTTP.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import sqlalchemy as sa

from conforto._monitor.compare import MIN_VOTES
from conforto._predictions.schema import site_adaptations
from tests.cli import conforto_cli
from tests.processes import scrape

if TYPE_CHECKING:
    from pathlib import Path

    from tests.processes import Postgres

pytestmark = pytest.mark.integration

ROOM = {"ta": 24.0, "rh": 50.0, "vel": 0.1, "met": 1.1, "clo": 0.6}
SITE = "bloco A"


def _adapted(client: httpx.Client, observation: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/predict", json=observation)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _vote(answering: httpx.Client, voting: httpx.Client, sensation: float) -> bool:
    """An occupant (an app of their own) asks one instance and votes at the other; whether
    the answer voted on was adapted.
    """
    answer = _adapted(answering, {**ROOM, "site": SITE})
    vote = {"prediction_id": answer["prediction_id"], "thermal_sensation": sensation}
    client = {"X-Client-Id": f"app {answer['prediction_id']}"}
    sent = voting.post("/feedback", json=vote, headers=client)
    assert sent.status_code in (201, 202), sent.text  # 202: pending, not stored yet
    return answer["adaptation"] is not None


def _wait_for_votes(clients: list[httpx.Client], votes: int, timeout: float = 60.0) -> list[Any]:
    """Each instance's answer for the site once it has learned ``votes`` votes."""
    deadline = time.monotonic() + timeout
    answers: list[Any] = []
    while time.monotonic() < deadline:
        answers = [_adapted(c, {**ROOM, "site": SITE}) for c in clients]
        if all((a["adaptation"] or {}).get("votes") == votes for a in answers):
            return answers
        time.sleep(0.2)
    raise AssertionError(f"not every instance learned {votes} votes: {answers}")


def test_two_instances_on_one_log_apply_the_same_adaptation(
    serve: Any, trained_model: Path, postgres: Postgres, tmp_path: Path
) -> None:
    instances = [
        serve(
            "--model",
            str(trained_model),
            env={
                "CONFORTO_SERVE__LOG_URL": postgres.url,
                "CONFORTO_SERVE__SPOOL_DIR": str(tmp_path / name),
                "CONFORTO_SERVE__ADAPTATION__REFRESH_SECONDS": "0.5",
            },
        )
        for name in ("a", "b")
    ]
    with (
        httpx.Client(base_url=instances[0].url, timeout=10) as a,
        httpx.Client(base_url=instances[1].url, timeout=10) as b,
    ):
        first = _adapted(a, {**ROOM, "site": SITE})
        assert first["adaptation"] is None  # nobody has voted yet
        adapted_votes = 0  # the votes on adapted answers (the first votes may teach the next)
        for client, voter in ((a, b), (b, a)):  # answered by one, voted at the other
            for _ in range(12):
                adapted_votes += _vote(client, voter, 3)
        on_a, on_b = _wait_for_votes([a, b], 24)

        assert on_a["adaptation"]["version"] == on_b["adaptation"]["version"]
        assert on_a["probabilities"] == on_b["probabilities"]
        assert on_a["adaptation"]["zero_shot"] == first["probabilities"]
        assert on_a["adaptation"]["zero_shot_class"] == first["predicted_class"]
        assert on_a["probabilities"]["warm"] > first["probabilities"]["warm"]  # hot votes
        assert on_a["adaptation"]["zero_shot_dissatisfied"] == first["dissatisfied"]
        assert on_a["dissatisfied"] > first["dissatisfied"]  # +3: every one dissatisfied
        assert on_a["unacceptable"] == first["unacceptable"]  # the model's own
        elsewhere = _adapted(b, {**ROOM, "site": "bloco B"})
        assert elsewhere["adaptation"] is None
        assert elsewhere["probabilities"] == first["probabilities"]
        for instance in instances:
            samples = scrape(f"{instance.url}/metrics")
            assert samples["conforto_adaptation_sites"] == 1
            assert samples["conforto_adaptation_version"] == on_a["adaptation"]["version"]
            adapted = sum(v for k, v in samples.items() if k.startswith("conforto_adapted_pred"))
            assert adapted >= 1

        for _ in range(MIN_VOTES):  # votes on adapted answers: compared with zero-shot ones
            adapted_votes += _vote(a, b, 2)
    report = _compared(postgres.url, tmp_path / "compare", votes=adapted_votes)
    assert report["predictions"] >= MIN_VOTES + 2
    assert report["production"]["accuracy"] <= report["challenger"]["accuracy"]  # warmer: right

    log = {"CONFORTO_SERVE__LOG_URL": postgres.url}
    _wait_for_votes_learned(postgres.url, 24 + MIN_VOTES)
    current = conforto_cli("monitor", "adaptation", env=log)
    assert current.returncode == 0, current.stderr
    assert SITE in current.stdout
    assert f" {24 + MIN_VOTES} " in current.stdout
    trail = conforto_cli("monitor", "adaptation", "--site", SITE, env=log)
    assert " 24 " in trail.stdout  # the state both instances answered with, kept
    assert (
        "no site adaptation learned yet"
        in conforto_cli("monitor", "adaptation", "--site", "bloco B", env=log).stdout
    )


def _wait_for_votes_learned(url: str, votes: int, timeout: float = 30.0) -> None:
    """Until a state of ``votes`` votes is recorded."""
    query = sa.select(sa.func.max(site_adaptations.c.votes))
    engine = sa.create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(query).scalar() == votes:
                    return
            time.sleep(0.2)
    finally:
        engine.dispose()
    raise AssertionError(f"no state of {votes} votes recorded")


def _compared(url: str, out: Path, votes: int, timeout: float = 60.0) -> dict[str, Any]:
    """``monitor compare``'s site adaptation entry, once it counts ``votes`` votes."""
    deadline = time.monotonic() + timeout
    while True:
        done = conforto_cli(
            "monitor",
            "compare",
            "--since",
            "1h",
            "--reps",
            "100",
            "--out",
            str(out),
            env={"CONFORTO_SERVE__LOG_URL": url},
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "site adaptation" in done.stdout
        entry: dict[str, Any] = json.loads((out / "compare.json").read_text())["adaptation"]
        if entry["votes"] >= votes or time.monotonic() > deadline:
            assert entry["votes"] == votes
            return entry
        time.sleep(0.5)
