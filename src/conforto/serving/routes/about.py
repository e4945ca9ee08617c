"""``/`` (about), ``/health`` (liveness) and ``/ready`` (a model answers)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

import conforto
from conforto.serving.deps import PredictorDep, ServiceDep

router = APIRouter()


@router.get("/")
async def about(service: ServiceDep) -> dict[str, Any]:
    """Service name, version, model version and where the docs are."""
    predictor = service.runtime.predictor
    return {
        "service": "conforto",
        "version": conforto.__version__,
        "model_version": predictor.version if predictor else None,
        "docs": "/docs",
        "openapi": "/openapi.json",
    }


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "healthy"}


@router.get("/ready", responses={503: {"description": "No model is loaded."}})
async def ready(predictor: PredictorDep) -> dict[str, Any]:
    """Readiness: a model is loaded and answering."""
    return {"status": "ready", "model_version": predictor.version}
