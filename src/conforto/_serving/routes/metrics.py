"""``/metrics``: the Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter, Response

from conforto._serving import telemetry
from conforto._serving.deps import MetricsReaderDep

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(_: MetricsReaderDep) -> Response:
    """Prometheus exposition of the service's metrics (behind ``serve.metrics_token`` when
    set).
    """
    body, content_type = telemetry.exposition()
    return Response(body, media_type=content_type)
