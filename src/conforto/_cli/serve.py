"""``conforto serve``: the prediction service under uvicorn."""

from __future__ import annotations

import contextlib
import os
import tempfile
from enum import StrEnum
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from conforto._settings import get_settings

if TYPE_CHECKING:
    from fastapi import FastAPI


class Mode(StrEnum):
    """How a challenger runs beside production."""

    shadow = "shadow"
    canary = "canary"


def serve(
    model: Annotated[
        str | None, typer.Option("--model", help="Model directory, or 'production' (the default).")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            help="TCP port (PORT, as Cloud Run sets it).", min=1, max=65535, envvar="PORT"
        ),
    ] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)] = 1,
    challenger: Annotated[
        str | None,
        typer.Option(
            "--challenger",
            help="A second model beside production: a registry version or a model directory.",
        ),
    ] = None,
    mode: Annotated[
        Mode,
        typer.Option(
            help="shadow: production answers, the challenger scores behind it; "
            "canary: the challenger answers a share of the clients."
        ),
    ] = Mode.shadow,
    canary_percent: Annotated[
        float,
        typer.Option(help="Share of clients a canary answers [%].", min=0.01, max=100),
    ] = 10.0,
) -> None:
    """Serve predictions over HTTP (FastAPI + uvicorn); docs at /docs.

    With a tracking server and the production model, the server's production version is
    downloaded and verified first (the service itself reads only the local pointer); when the
    server cannot be reached, what this machine has serves. A challenger's automatic stop and
    the rest of its settings: CONFORTO_SERVE__CHALLENGER__* (see the serving guide).
    """
    import uvicorn

    from conforto._cli.common import err_console, refresh_production
    from conforto.errors import ConfortoError, NoProductionModel

    if model in (None, "production"):
        try:
            refresh_production()
        except NoProductionModel:
            pass  # the service starts anyway: /ready says so, and which command makes one
        except ConfortoError as exc:  # the server is down: what this machine has still serves
            err_console.print(f"[yellow]warning:[/] not refreshed from the server: {exc}")
    if model not in (None, "production"):
        # uvicorn's workers are processes of their own: they read the settings from the
        # environment they inherit
        os.environ["CONFORTO_SERVE__MODEL_DIR"] = str(Path(model).resolve())
        get_settings.cache_clear()
    if challenger is not None:
        folder = Path(challenger)
        os.environ["CONFORTO_SERVE__CHALLENGER__MODEL"] = (
            str(folder.resolve()) if folder.is_dir() else challenger
        )
        os.environ["CONFORTO_SERVE__CHALLENGER__MODE"] = mode.value
        os.environ["CONFORTO_SERVE__CHALLENGER__CANARY_PERCENT"] = str(canary_percent)
        get_settings.cache_clear()
    with contextlib.ExitStack() as stack:
        if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # prometheus-client's own variable: every worker writes its metric samples there and
            # /metrics adds them up; the folder goes when the service stops
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="conforto-metrics-")
            )
        uvicorn.run(
            "conforto._cli.serve:service_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            access_log=False,
        )


def registry_version(version: str) -> tuple[Path, str]:
    """The service's :class:`~conforto._serving.challenger_slot.VersionResolver` over this machine's
    registry: a version's verified local artifact, and its number.
    """
    from conforto._registry.model_registry import resolve_version

    found, artifact = resolve_version(get_settings(), version)
    return artifact, found.version


def service_app() -> FastAPI:
    """The process entry of ``conforto serve`` (``uvicorn --factory``, one per worker): the
    service, its challengers' versions found in the registry where the registry is installed
    (MLflow, of the ``train`` extra); in the image, only baked or mounted models.
    """
    from conforto._serving.app import app_from_env

    return app_from_env(registry_version if find_spec("mlflow") is not None else None)
