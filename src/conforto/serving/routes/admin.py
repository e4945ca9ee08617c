"""``/admin/reload``: load the current model without a restart, behind a bearer token."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter

from conforto.serving.deps import AdminDep, ServiceDep
from conforto.serving.schemas import Reloaded

router = APIRouter()


@router.post(
    "/admin/reload",
    response_model=Reloaded,
    responses={
        401: {"description": "No bearer token."},
        403: {"description": "Wrong token."},
        404: {"description": "Reload is disabled (no token configured)."},
        409: {"description": "The model could not be loaded; the old one still serves."},
    },
)
async def admin_reload(_: AdminDep, service: ServiceDep) -> dict[str, Any]:
    """Load the current production model (or the served directory again) without a restart."""
    return asdict(await service.reload())
