"""Service operations over real HTTP: prediction log, feedback, metrics, reload, outages."""

from __future__ import annotations

import functools
import json
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from conforto._predictions.ids import new_ids
from conforto._predictions.schema import feedback, predictions
from conforto._registry.model_registry import open_registry
from conforto._settings import get_settings
from tests.factories import table_rows
from tests.processes import eventually

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

OBS = {"ta": 24.5, "rh": 55.0, "vel": 0.15, "met": 1.1, "clo": 0.6}
TOKEN = "s3cret-token-for-tests"  # noqa: S105 - a test's own token
#: Until a condition holds; the log's tables appear with the service's first write.
settled = functools.partial(eventually, ignoring=(sa.exc.SQLAlchemyError,))


def _metrics(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _sum(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= set(have))


def test_feedback_round_trip_and_metrics(serve: Any, trained_model: Path, log_url: str) -> None:
    server = serve("--model", str(trained_model), env={"CONFORTO_SERVE__LOG_URL": log_url})
    with httpx.Client(base_url=server.url, timeout=10) as client:
        answers = [client.post("/predict", json={**OBS, "site": "bloco B"}).json()]
        answers += [client.post("/predict", json=OBS).json() for _ in range(2)]
        batch = client.post("/predict/batch", json={"observations": [OBS, {**OBS, "site": "C"}]})
        assert batch.status_code == 200
        pid = answers[0]["prediction_id"]
        first = client.post("/feedback", json={"prediction_id": pid, "thermal_sensation": 1.5})
        assert first.status_code == 201, first.text
        assert first.json() == {
            "prediction_id": pid,
            "thermal_sensation": 1.5,
            "recorded": True,
            "status": "matched",  # this process spooled it
        }
        second = client.post("/feedback", json={"prediction_id": pid, "thermal_sensation": -0.5})
        assert second.status_code == 201
        unknown = client.post("/feedback", json={"prediction_id": "0" * 32, "thermal_sensation": 0})
        assert unknown.status_code == 404
        assert "no prediction" in unknown.json()["detail"]
        out_of_range = client.post("/feedback", json={"prediction_id": pid, "thermal_sensation": 4})
        assert out_of_range.status_code == 422

        settled(lambda: len(table_rows(log_url, predictions)) == 5)
        settled(lambda: len(table_rows(log_url, feedback)) == 2)
        votes = sorted(r["thermal_sensation"] for r in table_rows(log_url, feedback))
        assert votes == [-0.5, 1.5]
        stored = {r["prediction_id"]: r for r in table_rows(log_url, predictions)}
        assert stored[pid]["inputs"] == OBS  # the site is stored beside the inputs
        assert stored[pid]["site"] == "bloco B"
        assert sorted(r["site"] or "" for r in stored.values()) == ["", "", "", "C", "bloco B"]
        assert stored[pid]["predicted_class"] == answers[0]["predicted_class"]

        written = "conforto_prediction_log_writes_total"  # read from the writer every second
        settled(lambda: _sum(_metrics(client), written, table="feedback") == 2)
        samples = _metrics(client)
        assert _sum(samples, "conforto_http_requests_total", route="/predict", status="200") == 3
        assert _sum(samples, "conforto_http_requests_total", route="/feedback", status="404") == 1
        assert _sum(samples, "conforto_predictions_total") == 5
        assert _sum(samples, "conforto_errors_total", type="validation") == 1
        assert _sum(samples, written, table="predictions") == 5
        assert _sum(samples, "conforto_prediction_log_spool_bytes") == 0
        assert _sum(samples, "conforto_feedback_total", status="matched") == 2
        latency = "conforto_http_request_duration_seconds_count"
        assert _sum(samples, latency, route="/predict", status="200") == 3
        version = answers[0]["model_version"]
        assert _sum(samples, "conforto_model_info", version=version) == 1
        assert _sum(samples, "conforto_model_ready") == 1
        assert _sum(samples, "conforto_production_model_missing") == 0
        accuracy = json.loads((trained_model / "manifest.json").read_text())["metrics"]["accuracy"]
        assert _sum(samples, "conforto_model_validation_accuracy") == pytest.approx(accuracy)


def test_reload_needs_the_right_token(serve: Any, trained_model: Path) -> None:
    closed = serve("--model", str(trained_model))
    assert httpx.post(f"{closed.url}/admin/reload").status_code == 404  # no token: disabled
    server = serve("--model", str(trained_model), env={"CONFORTO_SERVE__ADMIN_TOKEN": TOKEN})
    with httpx.Client(base_url=server.url, timeout=30) as client:
        missing = client.post("/admin/reload")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = client.post("/admin/reload", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        right = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status_code == 200, right.text
        assert right.json()["changed"] is False  # the same artifact: nothing to swap


def _hammer(url: str, stop: threading.Event, seen: list[tuple[int, str]]) -> None:
    """Requests until ``stop``, 10 ms apart (traffic, not a flood: the suite's other workers
    share the cores), each answer's status and model version into ``seen``."""
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            response = client.post("/predict", json=OBS)
            version = (
                response.json().get("model_version", "") if response.status_code == 200 else ""
            )
            seen.append((response.status_code, version))
            stop.wait(0.01)


def test_new_production_version_is_swapped_in_under_load_without_errors(
    serve: Any, trained_model: Path, second_model: Path
) -> None:
    registry = open_registry(get_settings())
    registry.register(trained_model)
    registry.register(second_model)
    registry.promote("1", force=True)
    server = serve(
        env={"CONFORTO_SERVE__ADMIN_TOKEN": TOKEN, "CONFORTO_SERVE__POLL_SECONDS": "0.3"}
    )
    seen: list[tuple[int, str]] = []
    stop = threading.Event()
    workers = [threading.Thread(target=_hammer, args=(server.url, stop, seen)) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        settled(lambda: len(seen) >= 50)
        registry.promote("2", force=True)  # the service notices the pointer by itself
        settled(lambda: bool(seen) and seen[-1][1] == "2")
        registry.rollback()
        reload = httpx.post(
            f"{server.url}/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )
        assert reload.status_code == 200
        assert reload.json()["model_version"] == "1"
        after = len(seen)
        settled(lambda: len(seen) >= after + 50)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    statuses = Counter(status for status, _ in seen)
    assert statuses == {200: len(seen)}, statuses  # not one failed request
    versions = [v for _, v in seen]
    assert versions[0] == "1"
    assert "2" in versions
    assert versions[-1] == "1"
    with httpx.Client(base_url=server.url) as client:
        samples = _metrics(client)
    assert _sum(samples, "conforto_model_reloads_total", outcome="swapped") >= 2
    assert _sum(samples, "conforto_model_info", version="1") == 1
    assert _sum(samples, "conforto_model_info", version="2") == 0


def test_database_down_mid_load_predictions_go_on_rows_land_later(
    serve: Any, trained_model: Path, postgres: Any
) -> None:
    server = serve("--model", str(trained_model), env={"CONFORTO_SERVE__LOG_URL": postgres.url})
    with httpx.Client(base_url=server.url, timeout=10) as client:
        before = [client.post("/predict", json=OBS) for _ in range(10)]
        settled(lambda: len(table_rows(postgres.url, predictions)) == 10)
        postgres.stop()
        during = [client.post("/predict", json=OBS) for _ in range(40)]
        assert {r.status_code for r in before + during} == {200}
        settled(lambda: _sum(_metrics(client), "conforto_prediction_log_failures_total") >= 1)
        spooled = "conforto_prediction_log_spool_bytes"
        settled(lambda: _sum(_metrics(client), spooled) > 0)  # the rows wait on disk
        pid = during[0].json()["prediction_id"]
        vote = client.post("/feedback", json={"prediction_id": pid, "thermal_sensation": 1})
        assert vote.status_code == 201  # spooled by this process: known without the database
        young = client.post(
            "/feedback", json={"prediction_id": new_ids(1)[0], "thermal_sensation": 1}
        )
        assert young.status_code == 202  # maybe on its way from another instance: pending
        gone = client.post("/feedback", json={"prediction_id": "f" * 32, "thermal_sensation": 1})
        assert gone.status_code == 503  # only the database could tell: not a false 404
        postgres.start()
        settled(lambda: len(table_rows(postgres.url, predictions)) == 50, timeout=30)
        settled(lambda: len(table_rows(postgres.url, feedback)) == 2)
        settled(lambda: _sum(_metrics(client), spooled) == 0)
        status = {r["prediction_id"]: r["status"] for r in table_rows(postgres.url, feedback)}
        assert status[pid] == "matched"


@pytest.mark.parametrize("home", ["absolute", "relative"], indirect=True)
def test_metrics_add_up_across_workers(
    serve: Any, trained_model: Path, tmp_path: Path, home: Path
) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    server = serve("--model", str(trained_model), "--workers", "2", env={"TMPDIR": str(temporary)})
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(30):
            assert client.post("/predict", json=OBS).status_code == 200
    totals = set()
    for _ in range(6):  # new connections: whichever worker answers, the totals are the same
        with httpx.Client(base_url=server.url, timeout=10) as client:
            totals.add(_sum(_metrics(client), "conforto_predictions_total"))
    assert totals == {30.0}
    assert len(list(temporary.glob("conforto-metrics-*/*.db"))) >= 2  # both workers wrote samples
    # the workers' writers keep the log in the home, relative or not
    settled(lambda: len(table_rows(f"sqlite:///{home / 'predictions.db'}", predictions)) == 30)
    server.stop()
    assert not list(temporary.iterdir())  # the samples' folder goes with the service


def test_graceful_stop_loses_no_row(serve: Any, trained_model: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    server = serve("--model", str(trained_model), env={"CONFORTO_SERVE__LOG_URL": url})
    with httpx.Client(base_url=server.url, timeout=10) as client:
        batch = client.post("/predict/batch", json={"observations": [OBS] * 200})
        assert batch.status_code == 200
    output = server.stop()  # SIGTERM right away: the rows are still in the buffer
    assert "could not be written" not in output
    assert len(table_rows(url, predictions)) == 200
