"""``/`` (about), ``/health`` (liveness) and ``/ready`` (a model answers)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from conforto.lineage import package_version
from conforto.serving.deps import PredictorDep, ServiceDep
from conforto.serving.routes.explorer import page

router = APIRouter()
ABOUT = {
    "content": {
        "application/json": {"schema": {"type": "object", "additionalProperties": True}},
        "text/html": {"schema": {"type": "string"}},
    },
    "description": "The service's name, versions and links; to a browser (`Accept: text/html`), "
    "the comfort explorer's page.",
}


@router.get("/", response_model=None, responses={200: ABOUT})
async def about(request: Request, service: ServiceDep) -> dict[str, Any] | Response:
    """Service name, version, model version and where the docs are; a browser gets the comfort
    explorer (``/explorer``).
    """
    if "text/html" in request.headers.get("accept", ""):
        return page()
    predictor = service.runtime.predictor
    return {
        "service": "conforto",
        "version": package_version(),
        "model_version": predictor.version if predictor else None,
        "docs": "/docs",
        "openapi": "/openapi.json",
        "explorer": "/explorer",
    }


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "healthy"}


@router.get("/ready", responses={503: {"description": "No model is loaded."}})
async def ready(predictor: PredictorDep) -> dict[str, Any]:
    """Readiness: a model is loaded and answering."""
    return {"status": "ready", "model_version": predictor.version}
