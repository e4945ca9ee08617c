"""Site adaptation served: two instances on one PostgreSQL log apply the same adaptation after
votes arrive at either, over real HTTP.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

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
        for client, voter in ((a, b), (b, a)):  # answered by one, voted at the other
            for _ in range(12):
                pid = _adapted(client, {**ROOM, "site": SITE})["prediction_id"]
                vote = {"prediction_id": pid, "thermal_sensation": 3}
                assert voter.post("/feedback", json=vote).status_code in (201, 202)  # 202: pending
        on_a, on_b = _wait_for_votes([a, b], 24)

        assert on_a["adaptation"]["version"] == on_b["adaptation"]["version"]
        assert on_a["probabilities"] == on_b["probabilities"]
        assert on_a["adaptation"]["zero_shot"] == first["probabilities"]
        assert on_a["probabilities"]["warm"] > first["probabilities"]["warm"]  # hot votes
        elsewhere = _adapted(b, {**ROOM, "site": "bloco B"})
        assert elsewhere["adaptation"] is None
        assert elsewhere["probabilities"] == first["probabilities"]
