"""``/model``: what the service serves."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from conforto._model.manifest import CodeLineage, Metrics, TrainingData
from conforto._serving.deps import PredictorDep, ServiceDep

router = APIRouter()


class FeatureSummary(BaseModel):
    """One column of the model matrix."""

    name: str
    kind: str
    unit: str


class ModelInfo(BaseModel):
    """The served model: version, training metrics, lineage, features."""

    version: str
    name: str
    created: str
    metrics: Metrics
    data: TrainingData
    lineage: CodeLineage
    features: list[FeatureSummary]
    artifact: str


@router.get("/model")
async def model_info(predictor: PredictorDep, service: ServiceDep) -> ModelInfo:
    """The served model: version, training metrics, lineage, features."""
    manifest = predictor.model.manifest
    return ModelInfo(
        version=predictor.version,
        name=manifest.name,
        created=manifest.created,
        metrics=manifest.metrics,
        data=manifest.data,
        lineage=manifest.lineage,
        features=[FeatureSummary(name=f.name, kind=f.kind, unit=f.unit) for f in manifest.features],
        artifact=str(service.runtime.artifact),
    )
