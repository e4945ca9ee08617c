"""Exception handlers: every error becomes a JSON answer with a status, never a stack trace.

Validation errors are 422 with one entry per problem (field, message, value);
:class:`~conforto.errors.ConfortoError` subclasses take their status from
:data:`conforto.errors.HTTP_STATUS`; anything else is a bug, logged with its traceback and
answered with 500 ``internal error``.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, NotRequired, TypedDict

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from conforto.errors import ConfortoError, http_status

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from pydantic_core import ErrorDetails

log = logging.getLogger(__name__)


class Problem(TypedDict):
    """One validation problem of a request, as a 422 lists it."""

    field: str
    message: str
    value: NotRequired[str | int | float | bool | None]


def describe(error: ErrorDetails) -> Problem:
    """One validation error as ``{"field", "message", "value"}``: what was wrong, and with what.

    Examples
    --------
    >>> describe({"loc": ("body", "rh"), "msg": "too high", "input": 130, "type": "less_than"})
    {'field': 'rh', 'message': 'too high', 'value': 130}
    """
    loc = [str(p) for p in error.get("loc", ()) if p != "body"]
    out = Problem(field=".".join(loc) or "body", message=error.get("msg", "invalid"))
    if "input" in error and error.get("type") != "missing":
        value = error["input"]
        plain = isinstance(value, str | int | bool | None) or (
            isinstance(value, float) and math.isfinite(value)
        )
        out["value"] = value if plain else str(value)[:100]  # NaN/Infinity are not JSON
    return out


async def invalid(_request: Request, exc: Exception) -> JSONResponse:
    """422: every validation problem of the request, described."""
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this class
    return JSONResponse({"detail": [describe(e) for e in exc.errors()]}, status_code=422)


async def conforto_error(_request: Request, exc: Exception) -> JSONResponse:
    """The error's own status and message (see :mod:`conforto.errors`)."""
    assert isinstance(exc, ConfortoError)  # noqa: S101 - registered for this class
    return JSONResponse({"detail": str(exc)}, status_code=http_status(exc))


async def unexpected(request: Request, _exc: Exception) -> JSONResponse:
    """500 without details: the traceback goes to the log, not to the client."""
    log.exception("unexpected error on %s", request.url.path)
    return JSONResponse({"detail": "internal error"}, status_code=500)


def install_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(ConfortoError, conforto_error)
    app.add_exception_handler(Exception, unexpected)
