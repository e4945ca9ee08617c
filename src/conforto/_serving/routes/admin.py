"""``/admin/reload`` and ``/admin/challenger``: change what the service serves without a
restart, behind a bearer token.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.exceptions import HTTPException

from conforto._serving.deps import AdminDep, ServiceDep
from conforto._serving.schemas import ChallengerRequest, ChallengerStatus, Reloaded

router = APIRouter()
GUARDED: dict[int | str, dict[str, str]] = {
    401: {"description": "No bearer token."},
    403: {"description": "Wrong token."},
    404: {"description": "The admin routes are off (no token configured)."},
}


@router.post(
    "/admin/reload",
    response_model=Reloaded,
    responses={
        **GUARDED,
        409: {"description": "The model could not be loaded; the old one still serves."},
    },
)
async def admin_reload(_: AdminDep, service: ServiceDep) -> Reloaded:
    """Load the current production model (or the served directory again) without a restart."""
    return await service.reload()


@router.get("/admin/challenger", response_model=ChallengerStatus, responses=GUARDED)
async def challenger_status(_: AdminDep, service: ServiceDep) -> ChallengerStatus:
    """The challenger beside production: mode, state, why it stopped, its window."""
    if service.challenger is None:
        raise HTTPException(404, "no challenger: POST /admin/challenger starts one")
    return service.challenger.status()


@router.post(
    "/admin/challenger",
    response_model=ChallengerStatus,
    responses={
        **GUARDED,
        409: {"description": "The challenger could not be loaded; nothing changed."},
    },
)
async def start_challenger(
    wanted: ChallengerRequest, _: AdminDep, service: ServiceDep
) -> ChallengerStatus:
    """Start a challenger (in place of any other): a shadow scored behind production, or a
    canary answering a share of the clients.
    """
    return await service.set_challenger(wanted.model, wanted.mode, wanted.canary_percent)


@router.delete("/admin/challenger", response_model=ChallengerStatus, responses=GUARDED)
async def remove_challenger(_: AdminDep, service: ServiceDep) -> ChallengerStatus:
    """Take the challenger out: production answers everything. Its last status."""
    status = service.remove_challenger()
    if status is None:
        raise HTTPException(404, "no challenger to remove")
    return status
