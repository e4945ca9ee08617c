"""``/metrics``: the Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter, Response

from conforto._serving import telemetry

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics() -> Response:
    """Prometheus exposition of the service's metrics."""
    body, content_type = telemetry.exposition()
    return Response(body, media_type=content_type)
