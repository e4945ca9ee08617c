"""``/model``: what the service serves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from conforto.serving.deps import PredictorDep, ServiceDep

router = APIRouter()


@router.get("/model")
async def model_info(predictor: PredictorDep, service: ServiceDep) -> dict[str, Any]:
    """The served model: version, training metrics, lineage, features."""
    manifest = predictor.model.manifest
    return {
        "version": predictor.version,
        "name": manifest.get("name"),
        "created": manifest.get("created"),
        "metrics": manifest.get("metrics", {}),
        "data": manifest.get("data", {}),
        "lineage": manifest.get("lineage", {}),
        "features": [{k: f[k] for k in ("name", "kind", "unit")} for f in manifest["features"]],
        "artifact": str(service.runtime.artifact),
    }
