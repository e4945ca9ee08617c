"""``/`` (about), ``/health`` (liveness) and ``/ready`` (a model answers)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from conforto._lineage import package_version
from conforto._serving.deps import PredictorDep, ServiceDep
from conforto._serving.routes.explorer import page

router = APIRouter()
ABOUT = {
    "content": {
        "application/json": {"schema": {"type": "object", "additionalProperties": True}},
        "text/html": {"schema": {"type": "string"}},
    },
    "description": "The service's name, versions and links; to a browser (`Accept: text/html`), "
    "the comfort explorer's page.",
}


class About(BaseModel):
    """The service's name, versions and links."""

    service: str = "conforto"
    version: str
    model_version: str | None
    docs: str = "/docs"
    openapi: str = "/openapi.json"
    explorer: str = "/explorer"


class Ready(BaseModel):
    """A model is loaded and answering."""

    status: str = "ready"
    model_version: str
    challenger: str | None = Field(
        None,
        description="The version of the challenger running beside production (a shadow or a "
        "canary), if any: what a deploy that baked one checks.",
    )


@router.get("/", response_model=None, responses={200: ABOUT})
async def about(request: Request, service: ServiceDep) -> About | Response:
    """Service name, version, model version and where the docs are; a browser gets the comfort
    explorer (``/explorer``).
    """
    if "text/html" in request.headers.get("accept", ""):
        return page()
    predictor = service.runtime.predictor
    return About(version=package_version(), model_version=predictor.version if predictor else None)


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "healthy"}


@router.get(
    "/ready",
    response_model_exclude_none=True,  # no challenger: not named
    responses={503: {"description": "No model is loaded."}},
)
async def ready(predictor: PredictorDep, service: ServiceDep) -> Ready:
    """Readiness: a model is loaded and answering (and which challenger runs beside it)."""
    challenger = service.challenger
    running = challenger.version if challenger is not None and challenger.running else None
    return Ready(model_version=predictor.version, challenger=running)
