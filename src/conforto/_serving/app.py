"""The FastAPI application: :func:`create_app` builds it; :func:`app_from_env` is the process entry.

Routes (one router per resource, :mod:`conforto._serving.routes`): ``/`` (about), ``/health``
(liveness), ``/ready`` (a model answers), ``/predict``, ``/predict/batch``, ``/feedback``,
``/model``, ``/metrics`` (Prometheus), ``/admin/reload`` and ``/explorer`` (the comfort
explorer, a page for people). Without a model directory the app
serves the production version named by the registry's pointer file, and follows it: a new
production version is loaded and swapped in without a restart. A missing or corrupt model
leaves the process up, ``/health`` 200, and ``/ready`` and ``/predict`` 503 with the reason.
Every prediction and feedback vote goes to the prediction log.
"""

from __future__ import annotations

import gc
import inspect
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from conforto._lineage import package_version
from conforto._serving.handlers import install_handlers
from conforto._serving.middleware import BodyLimit, RequestMetrics
from conforto._serving.routes import ROUTERS
from conforto._serving.state import ServiceState
from conforto._settings import Settings, get_settings

if TYPE_CHECKING:
    from pathlib import Path

    from conforto._serving.challenger_slot import VersionResolver


def create_app(
    model_dir: Path | None = None,
    *,
    settings: Settings | None = None,
    resolver: VersionResolver | None = None,
) -> FastAPI:
    """Build the service.

    Parameters
    ----------
    model_dir
        Model directory to serve; ``None`` serves the registry's production version (found
        through the pointer file, without MLflow).
    settings
        Project settings (default: from the environment).
    resolver
        Where a challenger named by its registry version is found (``conforto serve`` gives
        the registry's); ``None``: challengers are model directories only.

    Returns
    -------
    fastapi.FastAPI
        The app; its :class:`~conforto._serving.state.ServiceState` (``app.state.service``)
        loads the model once, at start-up.
    """
    service = ServiceState(settings or get_settings(), model_dir, resolver)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="conforto",
        version=package_version(),
        summary="Predict occupants' thermal sensation (cool / neutral / warm).",
        lifespan=lifespan,
    )
    app.state.service = service
    install_handlers(app)
    for router in ROUTERS:
        include_flat(app, router)
    app.add_middleware(BodyLimit, limit=service.settings.serve.max_body_bytes)
    app.add_middleware(RequestMetrics)
    return app


def include_flat(app: FastAPI, router: APIRouter) -> None:
    """Add ``router``'s routes to the app's own router, each rebuilt from its own settings.

    Since FastAPI 0.137, ``include_router`` keeps the included router as a node that every
    request walks through, building the route's effective context and resolving its
    dependencies through it: measured in-process, ``/health`` went from 35 to 45 µs and a route
    with one dependency from 39 to 60 µs, 12 % of the service's throughput. Rebuilt on the
    app's router, the routes cost what routes declared on the app cost, and see
    ``app.dependency_overrides`` as included ones do.
    """
    accepted = inspect.signature(app.router.add_api_route).parameters
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"{route!r} is not an API route")
        settings = {
            name: getattr(route, name)
            for name in accepted
            if name not in ("self", "path", "endpoint") and hasattr(route, name)
        }
        app.router.add_api_route(route.path, route.endpoint, **settings)


#: Modules the service never uses but its libraries import when installed: LightGBM imports
#: scikit-learn (about 1 s with SciPy) and pandas (0.35 s) only to take their objects.
NOT_SERVED = ("sklearn", "pandas")
#: Allocations between young-generation collections (CPython's default is 700).
GC_THRESHOLD = 10_000

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


def with_process_tuning(lifespan: Lifespan, threads: int) -> Lifespan:
    """``lifespan``, followed by the process-wide tuning of a dedicated service process.

    Once the app has started:

    * anyio's thread limiter allows ``threads`` threads: batches hold the GIL most of the
      time, so a few threads serve more requests per second than the default forty
      contending for it;
    * ``gc.freeze()``: start-up objects live forever, so they leave every later collection
      (p99 was 135 ms without it, 20-30 ms with it);
    * young-generation collections every :data:`GC_THRESHOLD` allocations: a request
      allocates a few hundred objects that die with it; collecting every 700 spent ~5 % of
      the CPU under load, every 10,000 ~1.3 %.

    These change the whole process, so only :func:`app_from_env` applies them, never
    :func:`create_app` (tests build many apps in one process).
    """

    @asynccontextmanager
    async def wrapped(app: Any) -> AsyncIterator[Any]:
        async with lifespan(app) as state:
            to_thread.current_default_thread_limiter().total_tokens = threads
            gc.freeze()
            gc.set_threshold(GC_THRESHOLD)
            yield state

    return wrapped


def app_from_env(resolver: VersionResolver | None = None) -> FastAPI:
    """Factory for ``uvicorn --factory``: the service process, one per worker.

    The model comes from ``CONFORTO_SERVE__MODEL_DIR`` (default: production); challengers'
    versions from ``resolver`` (see :func:`create_app`). Being the process
    entry point, it keeps :data:`NOT_SERVED` from being imported in this process (unless they
    already are: start-up stays around a second) and applies the process-wide tuning of
    :func:`with_process_tuning`.
    """
    for name in NOT_SERVED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # `import` now fails fast
    settings = get_settings()
    app = create_app(settings.serve.model_dir, settings=settings, resolver=resolver)
    app.router.lifespan_context = with_process_tuning(
        app.router.lifespan_context, settings.serve.threads
    )
    return app
