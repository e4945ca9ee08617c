"""ASGI middleware of the service: the request-body limit and the request metrics."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from conforto._serving import telemetry

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before they are read whole.

    Parameters
    ----------
    app
        The application to protect.
    limit
        Largest body accepted [bytes]; a declared ``Content-Length`` over it is refused at
        once, a streamed body as soon as it passes it.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            detail = f"request body over {self.limit} bytes"
            await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, f"request body over {self.limit} bytes")
            return message

        await self.app(scope, counting, send)


class RequestMetrics:
    """Count and time every request by route template, method and status.

    Errors (status 400 and above) also count in ``conforto_errors_total`` by type.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            key = (route, scope["method"], status)
            children = self._children.get(key)
            if children is None:  # labels() takes a lock and builds a key: do it once per key
                children = self._children[key] = (
                    telemetry.REQUESTS.labels(route, scope["method"], str(status)),
                    telemetry.LATENCY.labels(route, str(status)),
                )
            children[0].inc()
            children[1].observe(time.perf_counter() - start)
            if status >= 400:
                telemetry.ERRORS.labels(telemetry.ERROR_TYPES.get(status, f"http_{status}")).inc()
