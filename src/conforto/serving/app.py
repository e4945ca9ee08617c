"""The FastAPI application: ``create_app`` builds it around one loaded model.

Routes: ``/`` (about), ``/health`` (liveness), ``/ready`` (a model answers), ``/predict``,
``/predict/batch`` and ``/model``. Without a model directory the app serves the production
version named by the registry's pointer file; a missing or corrupt model leaves the process up,
``/health`` 200, and ``/ready`` and ``/predict`` 503 with the reason.
"""

from __future__ import annotations

import gc
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

import conforto
from conforto.errors import ConfortoError
from conforto.serving.runtime import MicroBatcher, Predictor
from conforto.serving.schemas import BatchRequest, BatchResponse, Observation, Prediction
from conforto.settings import Settings, get_settings

log = logging.getLogger(__name__)
Scope = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Scope]], Callable[[Scope], Awaitable[None]]], Awaitable[None]
]


@dataclass
class Runtime:
    """What the app serves: a predictor, or the reason there is none."""

    predictor: Predictor | None = None
    error: str | None = None
    artifact: Path | None = None
    batcher: MicroBatcher | None = None


def load_runtime(model_dir: Path | None, settings: Settings) -> Runtime:
    """Load the model once; a failure becomes the reason ``/ready`` gives."""
    from conforto.artifact import load_model
    from conforto.pointer import production_artifact

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
        return Runtime(predictor=predictor, artifact=directory, batcher=MicroBatcher(predictor))
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

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal runtime
        # Batches hold the GIL most of the time: a few threads serve more requests per
        # second than the default forty contending for it.
        to_thread.current_default_thread_limiter().total_tokens = settings.serve.threads
        runtime = load_runtime(model_dir, settings)
        gc.freeze()  # start-up objects live forever: keep them out of every later collection
        yield
        if runtime.batcher is not None:
            runtime.batcher.close()

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

    @app.post("/predict", response_model=Prediction, responses={503: {"description": "No model."}})
    async def predict(observation: Observation) -> dict[str, Any]:
        """Predict the thermal sensation of one observation."""
        ready_predictor()
        assert runtime.batcher is not None  # noqa: S101 - set with the predictor
        return await runtime.batcher.predict(observation.model_dump())

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
        rows = [o.model_dump() for o in batch.observations]
        return {"predictions": ready_predictor().predict(rows)}

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
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (several workers): the model from CONFORTO_SERVE__MODEL."""
    settings = get_settings()
    return create_app(settings.serve.model, settings=settings)
