"""A/B tests of models over HTTP: a shadow scored behind production, a canary's sticky share of
clients, the automatic stop of a challenger made failing or slow on purpose (a fault injected
into the served process), and a promotion that waits for its shadow period."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conforto._data.target import CLASS_NAMES
from conforto._model.artifact import load_model
from conforto._predictions.schema import challenger_events, predictions, shadow
from conforto._registry.model_registry import open_registry
from conforto._serving.runtime import Predictor
from conforto._settings import get_settings
from tests.cli import conforto_cli
from tests.factories import table_rows
from tests.processes import eventually

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conforto._model.inputs import Observation
    from tests.processes import Server

pytestmark = pytest.mark.integration

TOKEN = "challenger-test-token"  # noqa: S105 - a test's own token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ADMIN = {"CONFORTO_SERVE__ADMIN_TOKEN": TOKEN}
ROOMS: list[Observation] = [
    {"ta": 16.0 + 0.3 * i, "rh": 30.0 + i % 50, "vel": 0.1, "met": 1.1, "clo": 0.4 + (i % 5) / 10}
    for i in range(60)
]
#: Loaded by the served process (``PYTHONPATH``): the challenger at ``CONFORTO_TEST_FAULTY``
#: fails, or takes 30 ms, on every call after its warm-up.
FAULT = """
import os, time
from conforto._serving import runtime

FOLDER, KIND = os.environ["CONFORTO_TEST_FAULTY"], os.environ["CONFORTO_TEST_FAULT"]
score, classify = runtime.Predictor.score, runtime.Predictor.classify


def fault(predictor):
    if os.path.realpath(predictor.model.directory) != FOLDER:
        return
    predictor.calls = getattr(predictor, "calls", 0) + 1
    if predictor.calls == 1:  # the warm-up
        return
    if KIND == "slow":
        time.sleep(0.03)
    else:
        raise RuntimeError("a fault injected by the test")


def faulty_score(self, rows, levels=(), sites=()):
    fault(self)
    return score(self, rows, levels, sites)


def faulty_classify(self, rows, matrix=None):
    fault(self)
    return classify(self, rows, matrix)


runtime.Predictor.score, runtime.Predictor.classify = faulty_score, faulty_classify
"""


def _fault(folder: Path, kind: str, model: Path) -> dict[str, str]:
    (folder / "sitecustomize.py").write_text(FAULT)
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    faulty = os.path.realpath(model)
    return {"PYTHONPATH": path, "CONFORTO_TEST_FAULTY": faulty, "CONFORTO_TEST_FAULT": kind}


def _metric(client: httpx.Client, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(
        s.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for s in family.samples
        if s.name == name and wanted <= set(s.labels.items())
    )


def _ask(
    client: httpx.Client, rooms: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Send ``rooms`` eight at a time (so production's batches hold several)."""

    def one(room: dict[str, Any]) -> dict[str, Any]:
        response = client.post("/predict", json=room, headers=headers)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, rooms))


def _status(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/admin/challenger", headers=AUTH)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _log_url(server: Server) -> str:
    del server  # stopped first: its log is flushed
    return get_settings().prediction_log_url


def test_a_shadow_scores_every_request_behind_production(
    serve: Callable[..., Server], tiny_models: tuple[Path, Path], tiny_challenger: Path
) -> None:
    production, challenger = tiny_models[0], tiny_challenger
    server = serve("--model", str(production), "--challenger", str(challenger), env=ADMIN)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answers = _ask(client, ROOMS)
        served = load_model(production).version
        assert {a["model_version"] for a in answers} == {served}
        status = eventually(lambda: (s := _status(client))["shadowed"] == len(ROOMS) and s)
        assert (status["mode"], status["state"]) == ("shadow", "running")
        assert status["version"] == load_model(challenger).version
        assert _metric(client, "conforto_model_predictions_total", arm="production") == 60
        assert _metric(client, "conforto_model_predictions_total", arm="shadow") == 60
        assert _metric(client, "conforto_shadow_compared_total") == 60
        agreed = _metric(client, "conforto_shadow_agreed_total")
        for i, answer in enumerate(answers[:40]):  # occupants vote on 40 of them
            vote = {"prediction_id": answer["prediction_id"], "thermal_sensation": i % 7 - 3}
            occupant = {"X-Client-Id": f"occupant {i}"}  # one client's votes are rate-limited
            assert client.post("/feedback", json=vote, headers=occupant).status_code == 201
    server.stop()
    url = _log_url(server)
    stored = {r["prediction_id"]: r for r in table_rows(url, shadow)}
    assert set(stored) == {a["prediction_id"] for a in answers}
    classes, proba = Predictor(load_model(challenger), "x").classify(ROOMS)
    for answer, k, p in zip(answers, classes.tolist(), proba.tolist(), strict=True):
        row = stored[answer["prediction_id"]]
        assert row["predicted_class"] == CLASS_NAMES[k]
        assert [row["p_cool"], row["p_neutral"], row["p_warm"]] == pytest.approx(p, abs=1e-12)
    same = sum(
        stored[a["prediction_id"]]["predicted_class"] == a["predicted_class"] for a in answers
    )
    assert agreed == same
    assert {r["arm"] for r in table_rows(url, predictions)} == {None}
    events = [(e["event"], e["mode"]) for e in table_rows(url, challenger_events)]
    assert events == [("started", "shadow")]
    _the_report_compares_them(load_model(challenger).version, agreed, served)


def _the_report_compares_them(challenger: str, agreed: float, served: str) -> None:
    """`conforto monitor compare` on the shadow test's log: 60 requests, 40 votes."""
    report = _compare()
    folder = get_settings().home / "reports" / "compare"
    entry = report["shadow"][challenger]
    assert (entry["predictions"], entry["votes"], entry["failed"]) == (60, 40, 0)
    assert entry["production_versions"] == [served]
    assert entry["agreement"] == pytest.approx(agreed / 60)
    for name in ("accuracy", "macro_f1"):
        gap = entry["challenger"][name] - entry["production"][name]
        low, high = entry["difference"][name]["ci"]
        assert entry["difference"][name]["value"] == pytest.approx(gap)
        assert low <= gap <= high
    assert report["canary"] == {}
    assert "Shadow " + challenger in (folder / "compare.html").read_text()


def test_a_canary_answers_its_share_of_clients_and_keeps_them(
    serve: Callable[..., Server], tiny_models: tuple[Path, Path], tiny_challenger: Path
) -> None:
    production, challenger = tiny_models[0], tiny_challenger
    canary = load_model(challenger).version
    args = ("--model", str(production), "--challenger", str(challenger), "--mode", "canary")
    server = serve(*args, "--canary-percent", "25", env=ADMIN)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        firsts = [
            client.post("/predict", json=ROOMS[0], headers={"X-Client-Id": f"c{i}"}).json()
            for i in range(400)
        ]
        share = np.mean([a["model_version"] == canary for a in firsts])
        assert abs(share - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 400)
        for i in range(10):  # the same client, the same model, every time
            again = _ask(client, ROOMS[:6], {"X-Client-Id": f"c{i}"})
            assert {a["model_version"] for a in again} == {firsts[i]["model_version"]}
        anonymous = _ask(client, ROOMS[:10])  # one address: one model
        assert len({a["model_version"] for a in anonymous}) == 1
        batch = client.post(
            "/predict/batch", json={"observations": ROOMS[:3]}, headers={"X-Client-Id": "c0"}
        )
        assert {p["model_version"] for p in batch.json()["predictions"]} == {
            firsts[0]["model_version"]
        }
        answered = _metric(client, "conforto_model_predictions_total", arm="canary")
        refused = client.post("/admin/challenger", json={"model": "/nowhere"}, headers=AUTH)
        assert refused.status_code == 409
        assert "neither a model directory nor a registry version" in refused.json()["detail"]
        assert _status(client)["mode"] == "canary"  # the canary before still runs
        assert client.delete("/admin/challenger", headers=AUTH).json()["version"] == canary
        assert client.get("/admin/challenger", headers=AUTH).status_code == 404
        after = _ask(client, ROOMS[:20], {"X-Client-Id": "c0"})
        assert {a["model_version"] for a in after} == {load_model(production).version}
    server.stop()
    arms = [r["arm"] for r in table_rows(_log_url(server), predictions)]
    assert arms.count("canary") == answered > 0
    events = [e["event"] for e in table_rows(_log_url(server), challenger_events)]
    assert events == ["started", "removed"]
    report = _compare()
    assert report["canary"][canary]["predictions"] == {
        "production": len(arms) - answered,
        "canary": answered,
    }
    assert [e["event"] for e in report["events"]] == ["started", "removed"]


def _compare() -> dict[str, Any]:
    """`conforto monitor compare --since 1h`, in process: its JSON report."""
    from typer.testing import CliRunner

    from conforto._cli import app

    done = CliRunner().invoke(app, ["monitor", "compare", "--since", "1h", "--reps", "200"])
    assert done.exit_code == 0, done.output
    found: dict[str, Any] = json.loads(
        (get_settings().home / "reports" / "compare" / "compare.json").read_text()
    )
    return found


def test_a_failing_shadow_is_stopped_counted_and_notified(
    serve: Callable[..., Server],
    tiny_models: tuple[Path, Path],
    tiny_challenger: Path,
    slack: tuple[str, list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    webhook, received = slack
    env = {
        **ADMIN,
        **_fault(tmp_path, "fail", tiny_challenger),
        "CONFORTO_NOTIFY__SLACK_WEBHOOK_URL": webhook,
        "CONFORTO_SERVE__CHALLENGER__MIN_PREDICTIONS": "20",
    }
    server = serve("--model", str(tiny_models[0]), "--challenger", str(tiny_challenger), env=env)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        _ask(client, ROOMS)  # every answer is production's, the shadow failing behind it
        status = eventually(lambda: (s := _status(client))["state"] == "stopped" and s)
        assert status["stopped_because"].startswith("error rate 100.0% over the last")
        assert _metric(client, "conforto_challenger_stops_total", reason="error_rate") == 1
        assert _metric(client, "conforto_challenger_state", state="stopped") == 1
        assert _metric(client, "conforto_challenger_failures_total", mode="shadow") >= 20
        scored = status["shadowed"]
        _ask(client, ROOMS[:20])
        assert _status(client)["shadowed"] == scored  # out of the path
    eventually(lambda: received)
    assert "challenger" in received[0]["text"]
    assert "stopped" in received[0]["text"]
    server.stop()
    events = [(e["event"], e["reason"]) for e in table_rows(_log_url(server), challenger_events)]
    assert events == [("started", ""), ("stopped", status["stopped_because"])]


def test_a_slow_canary_is_taken_out_and_production_answers_everyone(
    serve: Callable[..., Server],
    tiny_models: tuple[Path, Path],
    tiny_challenger: Path,
    tmp_path: Path,
) -> None:
    env = {
        **ADMIN,
        **_fault(tmp_path, "slow", tiny_challenger),
        "CONFORTO_SERVE__CHALLENGER__MAX_P99_MS": "15",
        "CONFORTO_SERVE__CHALLENGER__MIN_PREDICTIONS": "10",
    }
    args = ("--challenger", str(tiny_challenger), "--mode", "canary", "--canary-percent", "100")
    server = serve("--model", str(tiny_models[0]), *args, env=env)
    canary, served = load_model(tiny_challenger).version, load_model(tiny_models[0]).version
    with httpx.Client(base_url=server.url, timeout=30) as client:
        versions = [client.post("/predict", json=room).json()["model_version"] for room in ROOMS]
        switched = versions.index(served)
        assert switched >= 10  # judged only after its minimum
        assert set(versions[:switched]) == {canary}
        assert set(versions[switched:]) == {served}
        status = _status(client)
        assert status["state"] == "stopped"
        assert "p99 latency" in status["stopped_because"]
        assert _metric(client, "conforto_challenger_stops_total", reason="latency") == 1


def test_a_promotion_waits_for_a_clean_shadow_period(
    serve: Callable[..., Server],
    tiny_models: tuple[Path, Path],
    tiny_challenger: Path,
    tmp_path: Path,
) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text("gate:\n  shadow_min_predictions: 30\n")
    for model in (tiny_models[0], tiny_challenger):
        assert conforto_cli("model", "register", str(model)).returncode == 0
    assert conforto_cli("model", "promote", "1", "--force").returncode == 0
    open_registry(get_settings()).tag("2", "validated", "2026-12-02T00:00:00Z")
    early = conforto_cli("model", "promote", "2", "--config", str(config))
    assert early.returncode == 5  # waiting, not failed: what a workflow tells apart
    assert "0 shadowed predictions (at least 30 needed)" in early.stderr
    waiting = conforto_cli("model", "challenger", "--config", str(config))
    assert (waiting.returncode, waiting.stdout) == (0, "2\n")  # what a deploy bakes in
    (tmp_path / "unasked.yaml").write_text("gate: {}\n")
    unasked = conforto_cli("model", "challenger", "--config", str(tmp_path / "unasked.yaml"))
    assert (unasked.returncode, unasked.stdout) == (0, "")
    assert "the gate asks for no shadow period" in unasked.stderr
    polling = {**ADMIN, "CONFORTO_SERVE__POLL_SECONDS": "0.5"}
    server = serve("--challenger", "2", env=polling)  # production, by its pointer
    url = get_settings().prediction_log_url
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert {a["model_version"] for a in _ask(client, ROOMS[:30])} == {"1"}
        assert _status(client)["version"] == "2"
        eventually(lambda: len(table_rows(url, shadow)) == 30)  # stored, where `promote` reads
        done = conforto_cli("model", "promote", "2", "--config", str(config))
        assert done.returncode == 0, done.stderr
        assert "version 1 → 2" in done.stdout
        eventually(lambda: client.get("/model").json()["version"] == "2")  # the service follows
        assert client.get("/admin/challenger", headers=AUTH).status_code == 404  # it is production
        assert {a["model_version"] for a in _ask(client, ROOMS[:5])} == {"2"}
    server.stop()
    events = [e["event"] for e in table_rows(url, challenger_events)]
    assert events == ["started", "promoted"]
