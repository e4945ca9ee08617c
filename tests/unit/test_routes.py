"""Every route in-process (``TestClient``, dependency overrides): the error paths above all."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from conforto.errors import LogUnavailable
from conforto.serving.app import create_app
from conforto.serving.deps import get_prediction_log, get_predictor, get_service
from conforto.serving.predlog import PredictionLog, Queued
from conforto.serving.state import Runtime, ServiceState
from conforto.settings import ServeSettings, Settings

TOKEN = "s3cret"  # noqa: S105 - a test token
OBS = {"ta": 24.5, "rh": 55.0, "vel": 0.15, "met": 1.1, "clo": 0.6}


class FixedPredictor:
    """Answers every observation with the same probabilities (or raises, when ``fails``)."""

    version = "7"

    def __init__(self, fails: bool = False) -> None:
        self.fails = fails
        self.calls = 0
        self.model = type("Model", (), {"manifest": {"name": "fixed", "features": []}})()

    def predict(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        self.calls += 1
        if self.fails:
            raise RuntimeError("the booster broke")
        return [
            {
                "prediction_id": f"{self.calls:02d}{i:030d}",
                "predicted_class": "neutral",
                "probabilities": {"cool": 0.2, "neutral": 0.5, "warm": 0.3},
                "model_version": self.version,
                "pmv": 0.1,
                "ppd": 5.2,
                "notes": [],
            }
            for i, _ in enumerate(rows)
        ]


class MemorySink:
    """A prediction log's sink in memory; ``down`` makes it refuse like a dead database."""

    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.rows: list[Queued] = []

    def write(self, batch: Sequence[Queued]) -> None:
        if self.down:
            raise LogUnavailable("connection refused")
        self.rows.extend(batch)

    def has_prediction(self, prediction_id: str) -> bool:
        if self.down:
            raise LogUnavailable("connection refused")
        return any(t == "predictions" and q[0] == prediction_id for t, q in self.rows)

    def closing(self) -> MemorySink:
        return self

    def close(self) -> None:
        pass


def client_for(
    predictor: FixedPredictor | None = None,
    *,
    log: PredictionLog | None = None,
    serve: ServeSettings | None = None,
    model_dir: Path | None = None,
) -> tuple[TestClient, ServiceState]:
    """An app whose routes see a state built here (no lifespan: nothing is loaded or started)."""
    settings = Settings(serve=serve or ServeSettings())
    app: FastAPI = create_app(model_dir, settings=settings)
    state = ServiceState(settings, model_dir)
    if predictor is not None:
        state.serve(Runtime(predictor))  # type: ignore[arg-type]
    state.log = log
    app.state.service = state
    return TestClient(app, raise_server_exceptions=False), state


def test_without_a_model_only_liveness_answers() -> None:
    client, _ = client_for()
    assert client.get("/health").json() == {"status": "healthy"}
    assert client.get("/").json()["model_version"] is None
    for response in (
        client.get("/ready"),
        client.get("/model"),
        client.post("/predict", json=OBS),
        client.post("/predict/batch", json={"observations": [OBS]}),
    ):
        assert response.status_code == 503
        assert response.json()["detail"] == "no model loaded: starting"


def test_a_bad_body_is_422_before_the_missing_model_is_503() -> None:
    client, _ = client_for()
    response = client.post("/predict", json={**OBS, "rh": 130})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "rh"
    assert client.post("/predict/batch", json={"observations": []}).status_code == 422


def test_a_failing_model_is_500_without_its_traceback() -> None:
    client, _ = client_for(FixedPredictor(fails=True))
    for response in (
        client.post("/predict", json=OBS),
        client.post("/predict/batch", json={"observations": [OBS]}),
    ):
        assert response.status_code == 500
        assert response.json() == {"detail": "internal error"}
        assert "booster" not in response.text


def test_predictions_are_answered_counted_and_logged() -> None:
    log = PredictionLog(MemorySink())
    client, _ = client_for(FixedPredictor(), log=log)
    one = client.post("/predict", json=OBS)
    assert one.status_code == 200
    assert one.json()["probabilities"] == {"cool": 0.2, "neutral": 0.5, "warm": 0.3}
    batch = client.post("/predict/batch", json={"observations": [OBS, {**OBS, "ta": 30.0}]})
    assert [p["model_version"] for p in batch.json()["predictions"]] == ["7", "7"]
    assert log.buffered == 3
    assert client.get("/ready").json() == {"status": "ready", "model_version": "7"}
    assert client.get("/model").json()["name"] == "fixed"


def test_batch_over_the_limit_is_413() -> None:
    client, _ = client_for(FixedPredictor(), serve=ServeSettings(max_batch=2))
    response = client.post("/predict/batch", json={"observations": [OBS] * 3})
    assert response.status_code == 413
    assert "at most 2" in response.json()["detail"]


def test_feedback_finds_buffered_and_stored_predictions_and_404s_unknown_ids() -> None:
    sink = MemorySink()
    log = PredictionLog(sink)
    client, _ = client_for(FixedPredictor(), log=log)
    buffered = client.post("/predict", json=OBS).json()["prediction_id"]
    vote = client.post("/feedback", json={"prediction_id": buffered, "thermal_sensation": 1})
    assert vote.status_code == 201
    assert log.flush() == 2  # the prediction, then its vote
    stored = client.post("/feedback", json={"prediction_id": buffered, "thermal_sensation": -1})
    assert stored.status_code == 201
    unknown = client.post("/feedback", json={"prediction_id": "f" * 32, "thermal_sensation": 0})
    assert unknown.status_code == 404
    assert "f" * 32 in unknown.json()["detail"]


def test_feedback_is_503_when_the_log_is_down_full_or_not_started() -> None:
    body = {"prediction_id": "a" * 32, "thermal_sensation": 0.5}
    down, _ = client_for(FixedPredictor(), log=PredictionLog(MemorySink(down=True)))
    response = down.post("/feedback", json=body)
    assert response.status_code == 503
    assert "send the vote again later" in response.json()["detail"]

    full = PredictionLog(MemorySink(), capacity=10)
    client, _ = client_for(FixedPredictor(), log=full)
    ids = [client.post("/predict", json=OBS).json()["prediction_id"] for _ in range(10)]
    response = client.post("/feedback", json={**body, "prediction_id": ids[0]})
    assert response.status_code == 503
    assert "full" in response.json()["detail"]

    not_started, _ = client_for(FixedPredictor())
    assert not_started.post("/feedback", json=body).status_code == 503


@pytest.mark.parametrize(
    ("token", "header", "status"),
    [
        (None, "Bearer s3cret", 404),
        ("s3cret", None, 401),
        ("s3cret", "Bearer wrong", 403),
        ("s3cret", "Basic s3cret", 401),
    ],
)
def test_admin_reload_needs_the_configured_token(
    token: str | None, header: str | None, status: int
) -> None:
    client, _ = client_for(FixedPredictor(), serve=ServeSettings(admin_token=token))
    headers = {"Authorization": header} if header else {}
    response = client.post("/admin/reload", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_reload_that_cannot_load_is_409_and_the_old_model_keeps_serving(
    tmp_path: Path,
) -> None:
    client, state = client_for(
        FixedPredictor(),
        serve=ServeSettings(admin_token=TOKEN),
        model_dir=tmp_path / "nowhere",
    )
    response = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 409
    assert "still serving version 7" in response.json()["detail"]
    assert state.predictor.version == "7"
    assert client.post("/predict", json=OBS).status_code == 200


def test_bodies_over_the_limit_are_413_declared_or_streamed() -> None:
    client, _ = client_for(FixedPredictor(), serve=ServeSettings(max_body_bytes=1024))
    declared = client.post("/predict", content=b"{" + b" " * 2000 + b"}")
    assert declared.status_code == 413

    def chunks() -> Any:
        yield b"{"
        yield b" " * 2000
        yield b"}"

    streamed = client.post(
        "/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert "1024 bytes" in streamed.json()["detail"]


def test_unknown_routes_and_methods_are_counted_as_errors() -> None:
    client, _ = client_for(FixedPredictor())
    assert client.get("/nowhere").status_code == 404
    assert client.get("/predict").status_code == 405
    metrics = client.get("/metrics").text
    assert 'conforto_errors_total{type="not_found"}' in metrics
    assert 'conforto_errors_total{type="method_not_allowed"}' in metrics


def test_create_app_leaves_process_wide_settings_alone(tmp_path: Path) -> None:
    settings = Settings(serve=ServeSettings(log_url=f"sqlite:///{tmp_path / 'log.db'}"))
    before = gc.get_threshold(), gc.get_freeze_count()
    with TestClient(create_app(tmp_path / "nowhere", settings=settings)) as client:
        assert client.get("/ready").status_code == 503
        assert (gc.get_threshold(), gc.get_freeze_count()) == before


def test_dependencies_can_be_overridden_one_by_one() -> None:
    client, _ = client_for(FixedPredictor(), log=PredictionLog(MemorySink()))
    app: FastAPI = client.app  # type: ignore[assignment]
    other = FixedPredictor()
    other.version = "8"

    async def predictor() -> FixedPredictor:
        return other

    async def broken_log() -> PredictionLog:
        return PredictionLog(MemorySink(down=True))

    app.dependency_overrides[get_predictor] = predictor
    app.dependency_overrides[get_prediction_log] = broken_log
    assert client.get("/ready").json()["model_version"] == "8"
    vote = {"prediction_id": "b" * 32, "thermal_sensation": 0}
    assert client.post("/feedback", json=vote).status_code == 503
    fresh = ServiceState(Settings())  # no model: every route reading the state answers 503

    async def empty() -> ServiceState:
        return fresh

    app.dependency_overrides.clear()
    app.dependency_overrides[get_service] = empty
    assert client.get("/model").status_code == 503
    assert client.get("/").json()["model_version"] is None
