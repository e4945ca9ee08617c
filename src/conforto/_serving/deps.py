"""The routes' dependencies: the service state, its predictor and prediction log, the admin check.

Each is an ``async`` function (FastAPI runs plain ``def`` dependencies in a thread pool, which
costs more than the lookup itself) and each can be swapped in a test through
``app.dependency_overrides``.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from conforto._predictions.log import PredictionLog
from conforto._serving.runtime import Predictor
from conforto._serving.state import ServiceState
from conforto.errors import LogUnavailable

if TYPE_CHECKING:
    from pydantic import SecretStr

#: ``Authorization: Bearer <token>`` of the admin routes (checked by :func:`require_admin`).
BEARER = HTTPBearer(auto_error=False)


async def service_of(request: Request) -> ServiceState:
    """The app's :class:`ServiceState` (``app.state.service``): the one way to it.

    Every route declares it (:data:`ServiceDep`) but ``/predict``, which awaits it directly:
    FastAPI's resolution of even one dependency costs about 9 µs a request (measured
    in-process, 95 → 104 µs per prediction), a tenth of the route. A test replaces the state
    itself (``app.state.service = ...``), which every route sees.
    """
    service: ServiceState = request.app.state.service
    return service


ServiceDep = Annotated[ServiceState, Depends(service_of)]


async def get_predictor(service: ServiceDep) -> Predictor:
    """The predictor in service; :class:`~conforto.errors.ModelUnavailable` (503) without one."""
    return service.predictor


PredictorDep = Annotated[Predictor, Depends(get_predictor)]


async def get_prediction_log(service: ServiceDep) -> PredictionLog:
    """The prediction log; :class:`~conforto.errors.LogUnavailable` (503) before it started."""
    if service.log is None:
        raise LogUnavailable("the prediction log has not started: send the vote again later")
    return service.log


PredictionLogDep = Annotated[PredictionLog, Depends(get_prediction_log)]


def client_name(request: Request) -> str:
    """Who is asking: ``X-Client-Id`` when sent, else the client's address (at most 64
    characters: the log keeps that many).
    """
    named = request.headers.get("x-client-id")
    if named:
        return named[:64]
    return request.client.host if request.client else ""


async def require_admin(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    service: ServiceDep,
) -> None:
    """Let the request through only with the admin bearer token (compared in constant time).

    Raises
    ------
    HTTPException
        404 when no token is configured (the admin routes are off), 401 without a bearer
        token, 403 with a wrong one.
    """
    token = service.settings.serve.admin_token
    if token is None:
        raise HTTPException(404, "the admin routes are off: set CONFORTO_SERVE__ADMIN_TOKEN")
    _check_bearer(credentials, token)


async def require_metrics_reader(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    service: ServiceDep,
) -> None:
    """Let a request for ``/metrics`` through: anyone's when no metrics token is configured,
    else only one with that bearer token (401 without a token, 403 with a wrong one).
    """
    token = service.settings.serve.metrics_token
    if token is not None:
        _check_bearer(credentials, token)


def _check_bearer(credentials: HTTPAuthorizationCredentials | None, token: SecretStr) -> None:
    """401 without a bearer token, 403 with another than ``token`` (compared in constant
    time).
    """
    if credentials is None:
        raise HTTPException(
            401, "send 'Authorization: Bearer <token>'", headers={"WWW-Authenticate": "Bearer"}
        )
    if not secrets.compare_digest(
        credentials.credentials.encode(), token.get_secret_value().encode()
    ):
        raise HTTPException(403, "wrong token")


AdminDep = Annotated[None, Depends(require_admin)]
MetricsReaderDep = Annotated[None, Depends(require_metrics_reader)]
