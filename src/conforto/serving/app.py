"""The FastAPI application: ``create_app`` builds it around one loaded model.

Routes: ``/`` (about), ``/health`` (liveness), ``/ready`` (a model answers), ``/predict``,
``/predict/batch``, ``/feedback``, ``/model``, ``/metrics`` (Prometheus) and ``/admin/reload``.
Without a model directory the app serves the production version named by the registry's
pointer file, and follows it: a new production version is loaded and swapped in without a
restart. A missing or corrupt model leaves the process up, ``/health`` 200, and ``/ready`` and
``/predict`` 503 with the reason. Every prediction and feedback vote goes to the prediction log.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

from anyio import to_thread
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

import conforto
from conforto.errors import ConfortoError
from conforto.serving import metrics
from conforto.serving.logprocess import LogProcess
from conforto.serving.predlog import LogUnavailable, PredictionLog
from conforto.serving.runtime import MicroBatcher, Predictor
from conforto.serving.schemas import (
    BatchRequest,
    BatchResponse,
    FeedbackRequest,
    FeedbackResponse,
    Observation,
    Prediction,
    Reloaded,
)
from conforto.settings import Settings, get_settings
from conforto.target import CLASSES

log = logging.getLogger(__name__)
Scope = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Scope]], Callable[[Scope], Awaitable[None]]], Awaitable[None]
]


#: ``Authorization: Bearer <token>`` of the admin routes (checked in the route, not here).
BEARER = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class Runtime:
    """What the app serves: a predictor, or the reason there is none."""

    predictor: Predictor | None = None
    error: str | None = None
    artifact: Path | None = None
    sha256: str | None = None


def load_runtime(model_dir: Path | None, settings: Settings) -> Runtime:
    """Load the model (the production version without ``model_dir``); a failure becomes the
    reason ``/ready`` gives."""
    from conforto.artifact import load_model
    from conforto.pointer import artifact_sha256, production_artifact

    try:
        if model_dir is None:
            pointer, directory = production_artifact(settings.registry_dir)
            version = pointer.version
        else:
            directory = model_dir
            version = ""
        model = load_model(directory)
        predictor = Predictor(model, version or model.version)
        predictor.predict([{"ta": 22.0, "rh": 50.0, "vel": 0.1, "met": 1.1, "clo": 0.6}])  # warm up
        return Runtime(predictor, artifact=directory, sha256=artifact_sha256(directory))
    except ConfortoError as exc:
        log.error("no model loaded: %s", exc)
        return Runtime(error=str(exc))


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before they are read whole."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(self.limit)(scope, receive, send)
            return
        seen = 0

        async def counting() -> Scope:
            nonlocal seen
            message: Scope = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, f"request body over {self.limit} bytes")
            return message

        await self.app(scope, counting, send)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request body over {limit} bytes"}, status_code=413)


def _describe(error: dict[str, Any]) -> dict[str, Any]:
    """One validation error as ``{"field", "message", "value"}``: what was wrong, and with what."""
    loc = [str(p) for p in error.get("loc", ()) if p != "body"]
    out: dict[str, Any] = {"field": ".".join(loc) or "body", "message": error.get("msg", "invalid")}
    if "input" in error and error.get("type") != "missing":
        value = error["input"]
        plain = isinstance(value, str | int | bool | None) or (
            isinstance(value, float) and math.isfinite(value)
        )
        out["value"] = value if plain else str(value)[:100]  # NaN/Infinity are not JSON
    return out


Body = TypeVar("Body", bound=BaseModel)
#: The 422 answer's shape, as FastAPI documents it for routes whose body it parses itself.
VALIDATION_ERROR: dict[str, Any] = {
    "description": "Validation Error",
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
    },
}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI ``requestBody`` of a route that reads its body with :func:`parse_body`.

    The schema itself is in the document's components (the batch route's body uses it).
    """
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


async def parse_body(request: Request, model: type[Body]) -> Body:
    """The request's JSON body, validated by pydantic straight from the bytes.

    FastAPI's own path (``json.loads``, then dependency solving and validation of the dict)
    costs more than the prediction it leads to; errors are the same 422 either way.
    """
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


def create_app(model_dir: Path | None = None, *, settings: Settings | None = None) -> FastAPI:
    """Build the service.

    Parameters
    ----------
    model_dir
        Model directory to serve; ``None`` serves the registry's production version (found
        through the pointer file, without MLflow).
    settings
        Project settings (default: from the environment).

    Returns
    -------
    fastapi.FastAPI
        The app; the model is loaded once, at start-up.
    """
    settings = settings or get_settings()
    runtime = Runtime(error="starting")
    batcher: MicroBatcher | None = None
    predlog: PredictionLog | None = None
    swap = asyncio.Lock()

    async def reload_model() -> dict[str, Any]:
        """Load the current model beside the served one, then swap them in one assignment."""
        nonlocal runtime, batcher
        async with swap:
            fresh = await to_thread.run_sync(load_runtime, model_dir, settings)
            previous = runtime.predictor.version if runtime.predictor else None
            if fresh.predictor is None:
                metrics.RELOADS.labels("failed").inc()
                raise HTTPException(
                    409, f"reload failed: {fresh.error}; still serving version {previous}"
                )
            changed = fresh.sha256 != runtime.sha256
            if changed:
                if batcher is None:
                    batcher = MicroBatcher(fresh.predictor)
                batcher.predictor = fresh.predictor  # in-flight batches finish on the old one
                runtime = fresh
                metrics.set_model(fresh.predictor.version, previous)
                log.info("now serving version %s (was %s)", fresh.predictor.version, previous)
            metrics.RELOADS.labels("swapped" if changed else "unchanged").inc()
            return {
                "previous_version": previous,
                "model_version": fresh.predictor.version,
                "changed": changed,
            }

    async def follow_production() -> None:
        """Poll the production pointer; swap in a new production version when it changes."""
        from conforto.pointer import read_pointer

        while True:
            await asyncio.sleep(settings.serve.poll_seconds)
            try:
                pointer = read_pointer(settings.registry_dir)
                if pointer is not None and pointer.sha256 != runtime.sha256:
                    await reload_model()
            except (ConfortoError, HTTPException) as exc:
                log.warning("production model not reloaded: %s", getattr(exc, "detail", exc))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal runtime, batcher, predlog
        # Batches hold the GIL most of the time: a few threads serve more requests per
        # second than the default forty contending for it.
        to_thread.current_default_thread_limiter().total_tokens = settings.serve.threads
        runtime = load_runtime(model_dir, settings)
        if runtime.predictor is not None:
            batcher = MicroBatcher(runtime.predictor)
            metrics.set_model(runtime.predictor.version)
        predlog = PredictionLog(
            LogProcess(settings.prediction_log_url).start(),
            capacity=settings.serve.log_capacity,
            counters=metrics.LOG_COUNTERS,
        ).start()
        poller = (
            asyncio.create_task(follow_production())
            if model_dir is None and settings.serve.poll_seconds > 0
            else None
        )
        gc.freeze()  # start-up objects live forever: keep them out of every later collection
        # A request allocates a few hundred objects that die with it: collecting every 700
        # allocations (the default) spent ~5 % of the CPU under load, every 10,000 ~1.3 %.
        gc.set_threshold(10_000)
        yield
        if poller is not None:
            poller.cancel()
        if batcher is not None:
            batcher.close()
        await to_thread.run_sync(predlog.close)

    app = FastAPI(
        title="conforto",
        version=conforto.__version__,
        summary="Predict occupants' thermal sensation (cool / neutral / warm).",
        lifespan=lifespan,
    )

    def ready_predictor() -> Predictor:
        if runtime.predictor is None:
            raise HTTPException(503, f"no model loaded: {runtime.error}")
        return runtime.predictor

    per_class = {c.value: metrics.PREDICTIONS.labels(c.value) for c in CLASSES}

    def record(result: dict[str, Any], inputs: dict[str, Any], start: float) -> None:
        per_class[result["predicted_class"]].inc()
        if predlog is not None:
            predlog.add_prediction(result, inputs, (time.perf_counter() - start) * 1000.0)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": [_describe(e) for e in exc.errors()]}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.get("/")
    async def about() -> dict[str, Any]:
        """Service name, version, model version and where the docs are."""
        return {
            "service": "conforto",
            "version": conforto.__version__,
            "model_version": runtime.predictor.version if runtime.predictor else None,
            "docs": "/docs",
            "openapi": "/openapi.json",
        }

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "healthy"}

    @app.get("/ready", responses={503: {"description": "No model is loaded."}})
    async def ready() -> dict[str, Any]:
        """Readiness: a model is loaded and answering."""
        predictor = ready_predictor()
        return {"status": "ready", "model_version": predictor.version}

    @app.post(
        "/predict",
        response_model=Prediction,
        responses={422: VALIDATION_ERROR, 503: {"description": "No model."}},
        openapi_extra=json_body(Observation),
    )
    async def predict(request: Request) -> dict[str, Any]:
        """Predict the thermal sensation of one observation."""
        start = time.perf_counter()
        observation = await parse_body(request, Observation)  # 422 before 503, as FastAPI's
        ready_predictor()
        assert batcher is not None  # noqa: S101 - set with the predictor
        inputs = observation.model_dump(exclude_none=True)
        result = await batcher.predict(inputs)
        record(result, inputs, start)
        return result

    @app.post(
        "/predict/batch",
        response_model=BatchResponse,
        responses={413: {"description": "Too many observations."}},
    )
    def predict_batch(batch: BatchRequest) -> dict[str, Any]:
        """Predict several observations (at most ``CONFORTO_SERVE__MAX_BATCH``)."""
        if len(batch.observations) > settings.serve.max_batch:
            raise HTTPException(
                413,
                f"{len(batch.observations)} observations: at most "
                f"{settings.serve.max_batch} per request",
            )
        start = time.perf_counter()
        rows = [o.model_dump(exclude_none=True) for o in batch.observations]
        results = ready_predictor().predict(rows)
        for result, inputs in zip(results, rows, strict=True):
            record(result, inputs, start)
        return {"predictions": results}

    @app.post(
        "/feedback",
        status_code=201,
        response_model=FeedbackResponse,
        responses={
            404: {"description": "No such prediction."},
            503: {"description": "The prediction log cannot be reached."},
        },
    )
    async def give_feedback(vote: FeedbackRequest) -> dict[str, Any]:
        """Record an occupant's actual vote for a prediction (every vote is kept)."""
        assert predlog is not None  # noqa: S101 - started with the app
        try:
            known = await to_thread.run_sync(predlog.known, vote.prediction_id)
        except LogUnavailable as exc:
            log.warning("feedback: the prediction log cannot be asked: %s", exc)
            raise HTTPException(
                503, "the prediction log's database cannot be reached: send the vote again later"
            ) from None
        if not known:
            raise HTTPException(
                404,
                f"no prediction {vote.prediction_id}: send the prediction_id a /predict "
                "answer gave",
            )
        if not predlog.add_feedback(vote.prediction_id, vote.thermal_sensation):
            raise HTTPException(503, "the prediction log is full: send the vote again later")
        return {"prediction_id": vote.prediction_id, "thermal_sensation": vote.thermal_sensation}

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        """Prometheus exposition of the service's metrics."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.post(
        "/admin/reload",
        response_model=Reloaded,
        responses={
            401: {"description": "No bearer token."},
            403: {"description": "Wrong token."},
            404: {"description": "Reload is disabled (no token configured)."},
            409: {"description": "The model could not be loaded; the old one still serves."},
        },
    )
    async def admin_reload(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> dict[str, Any]:
        """Load the current production model (or the served directory again) without a restart."""
        token = settings.serve.admin_token
        if token is None:
            raise HTTPException(404, "reload is disabled: set CONFORTO_SERVE__ADMIN_TOKEN")
        if credentials is None:
            raise HTTPException(
                401, "send 'Authorization: Bearer <token>'", headers={"WWW-Authenticate": "Bearer"}
            )
        if not secrets.compare_digest(
            credentials.credentials.encode(), token.get_secret_value().encode()
        ):
            raise HTTPException(403, "wrong token")
        return await reload_model()

    @app.get("/model")
    async def model_info() -> dict[str, Any]:
        """The served model: version, training metrics, lineage, features."""
        predictor = ready_predictor()
        manifest = predictor.model.manifest
        return {
            "version": predictor.version,
            "name": manifest.get("name"),
            "created": manifest.get("created"),
            "metrics": manifest.get("metrics", {}),
            "data": manifest.get("data", {}),
            "lineage": manifest.get("lineage", {}),
            "features": [{k: f[k] for k in ("name", "kind", "unit")} for f in manifest["features"]],
            "artifact": str(runtime.artifact),
        }

    app.add_middleware(BodyLimit, limit=settings.serve.max_body_bytes)
    app.add_middleware(metrics.RequestMetrics)
    return app


#: Modules the service never uses but its libraries import when installed: LightGBM imports
#: scikit-learn (about 1 s with SciPy) only to offer its scikit-learn estimators.
NOT_SERVED = ("sklearn",)


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: the service process, one per worker.

    The model comes from ``CONFORTO_SERVE__MODEL`` (default: production). Being a process entry
    point, it also keeps :data:`NOT_SERVED` from being imported in this process (unless they
    already are), which keeps start-up under 3 s.
    """
    for name in NOT_SERVED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # `import` now fails fast
    settings = get_settings()
    return create_app(settings.serve.model, settings=settings)
