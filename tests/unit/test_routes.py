"""Every route in-process (``TestClient``, dependency overrides): the error paths above all."""

from __future__ import annotations

import gc
import re
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from conforto._predictions.answer import Prediction, Preference, Probabilities
from conforto._predictions.drain import DrainStatus
from conforto._predictions.ids import new_ids
from conforto._predictions.log import PredictionLog
from conforto._predictions.records import PredictionRow, Row, VoteRow
from conforto._predictions.spool import Spool, frames, segments
from conforto._serving.app import create_app
from conforto._serving.deps import ServiceDep, get_prediction_log, get_predictor
from conforto._serving.loading import Runtime
from conforto._serving.routes.predict import CoverageQuery, KindHeader
from conforto._serving.routes.predict import predict as fast_predict
from conforto._serving.schemas import Observation  # noqa: TC001 - FastAPI reads it at runtime
from conforto._serving.state import ServiceState
from conforto._settings import ServeSettings, Settings
from conforto.errors import LogUnavailable
from tests.factories import answer, manifest_of

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path


TOKEN = "s3cret"  # noqa: S105 - a test token
OBS = {"ta": 24.5, "rh": 55.0, "vel": 0.15, "met": 1.1, "clo": 0.6}


class FixedPredictor:
    """Answers every observation with the same probabilities (or raises, when ``fails``)."""

    version = "7"

    def __init__(self, fails: bool = False) -> None:
        self.fails = fails
        self.calls = 0
        self.model = type("Model", (), {"manifest": manifest_of(name="fixed")})()

    def score(
        self,
        rows: Sequence[dict[str, Any]],
        levels: Sequence[float | None] = (),
        sites: Sequence[str | None] = (),
    ) -> tuple[list[Prediction], None]:
        return self.predict(rows, levels), None

    def predict(
        self, rows: Sequence[dict[str, Any]], levels: Sequence[float | None] = ()
    ) -> list[Prediction]:
        self.calls += 1
        if self.fails:
            raise RuntimeError("the booster broke")
        return [
            answer(
                "neutral",
                f"{self.calls:02d}{i:030d}",
                probabilities=Probabilities(0.2, 0.5, 0.3),
                model_version=self.version,
                pmv=0.1,
                ppd=5.2,
                coverage=level or 0.9,
                dissatisfied=0.12,
                unacceptable=0.2,
                preference=Preference(0.3, 0.6, 0.1),
            )
            for i, level in enumerate(levels or [None] * len(rows))
        ]


class MemoryStore:
    """The log's database side in memory: the ids it holds; ``down`` makes it refuse like a
    dead database."""

    def __init__(self, down: bool = False, stored: Sequence[str] = ()) -> None:
        self.down = down
        self.stored = set(stored)

    def has_prediction(self, prediction_id: str) -> bool:
        if self.down:
            raise LogUnavailable("connection refused")
        return prediction_id in self.stored

    def status(self) -> DrainStatus:
        return DrainStatus()

    def close(self, timeout: float) -> bool:
        return True


class FullSpool(Spool):
    """A spool whose disk refuses every write."""

    def append(self, rows: Sequence[Row]) -> bool:
        self.dropped(len(rows))
        return False


def memory_log(folder: Path, store: MemoryStore | None = None, full: bool = False) -> PredictionLog:
    """A prediction log spooling into ``folder`` in front of a store in memory."""
    spool = (FullSpool if full else Spool)(folder / "spool")
    return PredictionLog(spool, store or MemoryStore())


def spooled(log: PredictionLog) -> list[Row]:
    """The rows a log has spooled."""
    return [
        row
        for paths in segments(log.spool.directory).values()
        for path in paths
        for frame in frames(path)
        for row in frame.rows or []
    ]


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


def test_an_unknown_kind_is_422_naming_the_header_and_the_kinds_both_routes_take() -> None:
    client, _ = client_for(FixedPredictor())
    headers = {"X-Request-Kind": "robot"}
    one = client.post("/predict", json=OBS, headers=headers)
    many = client.post("/predict/batch", json={"observations": [OBS]}, headers=headers)
    for response in (one, many):
        assert response.status_code == 422
        problem = response.json()["detail"][0]
        assert problem["field"] == "header.x-request-kind"
        assert "'occupant', 'explorer', 'smoke' or 'shadow'" in problem["message"]


def test_a_failing_model_is_500_without_its_traceback() -> None:
    client, _ = client_for(FixedPredictor(fails=True))
    for response in (
        client.post("/predict", json=OBS),
        client.post("/predict/batch", json={"observations": [OBS]}),
    ):
        assert response.status_code == 500
        assert response.json() == {"detail": "internal error"}
        assert "booster" not in response.text


def test_predictions_are_answered_counted_and_spooled(tmp_path: Path) -> None:
    log = memory_log(tmp_path)
    client, _ = client_for(FixedPredictor(), log=log)
    one = client.post("/predict", json=OBS)
    assert one.status_code == 200
    assert one.json()["probabilities"] == {"cool": 0.2, "neutral": 0.5, "warm": 0.3}
    batch = client.post(
        "/predict/batch",
        json={"observations": [OBS, {**OBS, "ta": 30.0}]},
        headers={"X-Request-Kind": "explorer"},
    )
    assert [p["model_version"] for p in batch.json()["predictions"]] == ["7", "7"]
    answered = [
        one.json()["prediction_id"],
        *(p["prediction_id"] for p in batch.json()["predictions"]),
    ]
    stored = [row for row in spooled(log) if isinstance(row, PredictionRow)]
    assert [row.prediction_id for row in stored] == answered  # on disk before the answers
    assert {(v.prediction_set, v.coverage) for v in stored} == {("neutral", 0.9)}
    assert [v.kind for v in stored] == ["occupant", "explorer", "explorer"]
    assert {(v.p_dissatisfied, v.p_prefer_warmer) for v in stored} == {(0.12, 0.1)}
    assert client.get("/ready").json() == {"status": "ready", "model_version": "7"}
    assert client.get("/model").json()["name"] == "fixed"
    exposed = client.get("/metrics").text
    for kind in ("occupant", "explorer"):
        assert f'conforto_predictions_total{{kind="{kind}",predicted_class="neutral"}}' in exposed
    assert 'conforto_prediction_sets_total{size="1"}' in exposed


def test_batch_over_the_limit_is_413() -> None:
    client, _ = client_for(FixedPredictor(), serve=ServeSettings(max_batch=2))
    response = client.post("/predict/batch", json={"observations": [OBS] * 3})
    assert response.status_code == 413
    assert "at most 2" in response.json()["detail"]


def _vote(client: TestClient, prediction_id: str) -> Any:
    return client.post("/feedback", json={"prediction_id": prediction_id, "thermal_sensation": 1})


def test_feedback_is_matched_pending_or_404_by_what_the_log_knows(tmp_path: Path) -> None:
    elsewhere = new_ids(1)[0]  # stored by another process
    log = memory_log(tmp_path, MemoryStore(stored=[elsewhere]))
    client, _ = client_for(FixedPredictor(), log=log)
    own = client.post("/predict", json=OBS).json()["prediction_id"]
    for known in (own, elsewhere):  # spooled here; in the database
        vote = _vote(client, known)
        assert (vote.status_code, vote.json()["status"]) == (201, "matched")
    young = new_ids(1)[0]  # answered elsewhere a moment ago, not stored yet
    pending = _vote(client, young)
    assert (pending.status_code, pending.json()["status"]) == (202, "pending")
    old = new_ids(1, now=1_700_000_000.0)[0]
    for unknown in (old, "f" * 32):  # past the horizon; not a time-ordered id
        response = _vote(client, unknown)
        assert response.status_code == 404
        assert unknown in response.json()["detail"]
    votes = [row.prediction_id for row in spooled(log) if isinstance(row, VoteRow)]
    assert votes == [own, elsewhere, young]
    metrics = client.get("/metrics").text
    assert 'conforto_feedback_total{status="pending"} 1.0' in metrics


def test_one_clients_votes_are_rate_limited_and_kept_with_its_name(tmp_path: Path) -> None:
    log = memory_log(tmp_path)
    client, _ = client_for(FixedPredictor(), log=log, serve=ServeSettings(votes_per_minute=2))
    own = client.post("/predict", json=OBS).json()["prediction_id"]
    vote = {"prediction_id": own, "thermal_sensation": 1.0}
    as_app = {"X-Client-Id": "app 7"}
    answers = [client.post("/feedback", json=vote, headers=as_app) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [201, 201, 429]
    refused = answers[2]
    assert "more than 2 votes a minute" in refused.json()["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    assert client.post("/feedback", json=vote, headers={"X-Client-Id": "app 8"}).status_code == 201
    assert client.post("/feedback", json=vote).status_code == 201  # by its address
    clients = [row.client for row in spooled(log) if isinstance(row, VoteRow)]
    assert clients == ["app 7", "app 7", "app 8", "testclient"]
    assert 'conforto_errors_total{type="rate_limited"}' in client.get("/metrics").text


def test_feedback_is_503_when_the_log_cannot_tell_or_write(tmp_path: Path) -> None:
    down, _ = client_for(FixedPredictor(), log=memory_log(tmp_path / "a", MemoryStore(down=True)))
    response = _vote(down, "a" * 32)
    assert response.status_code == 503
    assert "send the vote again later" in response.json()["detail"]
    assert _vote(down, new_ids(1)[0]).status_code == 202  # a young id needs no database

    full, _ = client_for(FixedPredictor(), log=memory_log(tmp_path / "b", full=True))
    own = full.post("/predict", json=OBS)
    assert own.status_code == 200  # answered even when it cannot be logged
    response = _vote(full, new_ids(1)[0])
    assert response.status_code == 503
    assert "cannot be written" in response.json()["detail"]

    not_started, _ = client_for(FixedPredictor())
    assert _vote(not_started, "a" * 32).status_code == 503


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


@pytest.mark.parametrize(
    ("token", "header", "status"),
    [
        (None, None, 200),  # a local service: open
        ("s3cret", None, 401),
        ("s3cret", "Bearer wrong", 403),
        ("s3cret", "Bearer s3cret", 200),
    ],
)
def test_metrics_need_the_metrics_token_once_one_is_set(
    token: str | None, header: str | None, status: int
) -> None:
    client, _ = client_for(FixedPredictor(), serve=ServeSettings(metrics_token=token))
    response = client.get("/metrics", headers={"Authorization": header} if header else {})
    assert response.status_code == status
    assert ("conforto_predictions_total" in response.text) == (status == 200)


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


def test_dependencies_can_be_overridden_one_by_one_and_the_state_replaced(tmp_path: Path) -> None:
    client, _ = client_for(FixedPredictor(), log=memory_log(tmp_path / "a"))
    app: FastAPI = client.app  # type: ignore[assignment]
    other = FixedPredictor()
    other.version = "8"

    async def predictor() -> FixedPredictor:
        return other

    async def broken_log() -> PredictionLog:
        return memory_log(tmp_path / "b", MemoryStore(down=True))

    app.dependency_overrides[get_predictor] = predictor
    app.dependency_overrides[get_prediction_log] = broken_log
    assert client.get("/ready").json()["model_version"] == "8"
    vote = {"prediction_id": "b" * 32, "thermal_sensation": 0}
    assert client.post("/feedback", json=vote).status_code == 503
    app.dependency_overrides.clear()
    app.state.service = ServiceState(Settings())  # no model: every route reading it answers 503
    assert client.post("/predict", json=OBS).status_code == 503
    assert client.get("/model").status_code == 503
    assert client.get("/").json()["model_version"] is None


def test_a_browser_gets_the_page_and_an_api_client_the_json() -> None:
    client, _ = client_for()
    browser = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert browser.headers["content-type"].startswith("text/html")
    assert browser.text == client.get("/explorer").text
    assert client.get("/").json()["explorer"] == "/explorer"  # curl, httpx: */*
    assert client.get("/", headers={"Accept": "application/json"}).json()["service"] == "conforto"


def test_the_page_loads_only_the_services_own_files_under_a_strict_policy() -> None:
    client, _ = client_for()
    page = client.get("/explorer")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy
    assert "<script>" not in page.text  # no inline code: the policy would block it
    for url in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        if url.startswith("data:") or url == "/docs":
            continue
        assert url.startswith("/explorer/"), url  # nothing from elsewhere
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-security-policy"] == policy
        assert asset.headers["x-content-type-options"] == "nosniff"
    assert client.get("/explorer/index.html").status_code == 404  # the page has its own route
    assert client.get("/explorer/..%2Fsettings.py").status_code == 404


def _idiomatic_predict() -> FastAPI:
    """An app whose ``/predict`` is written as FastAPI would have it: body, state,
    ``?coverage=`` and ``X-Request-Kind`` declared, parsed and validated by FastAPI."""

    async def predict(
        observation: Observation,  # noqa: ARG001 - documented, never called
        service: ServiceDep,  # noqa: ARG001
        coverage: CoverageQuery = None,  # noqa: ARG001
        kind: KindHeader = "occupant",  # noqa: ARG001
    ) -> dict[str, Any]:
        raise AssertionError("documented, never called")

    predict.__doc__ = fast_predict.__doc__  # read as the route is added
    app = FastAPI()
    no_model: dict[int | str, dict[str, Any]] = {503: {"description": "No model."}}
    app.post("/predict", response_model=Prediction, responses=no_model)(predict)
    return app


def test_the_fast_predict_route_documents_what_fastapi_would_generate(tmp_path: Path) -> None:
    """``/predict`` reads its body, ``?coverage=`` and its kind itself (the hot path); its OpenAPI
    operation, and every schema it names, is what FastAPI generates for the idiomatic route."""
    settings = Settings(serve=ServeSettings(log_url=f"sqlite:///{tmp_path / 'log.db'}"))
    fast = create_app(tmp_path / "nowhere", settings=settings).openapi()
    expected = _idiomatic_predict().openapi()
    assert fast["paths"]["/predict"] == expected["paths"]["/predict"]
    for name, schema in expected["components"]["schemas"].items():
        assert fast["components"]["schemas"][name] == schema, name
