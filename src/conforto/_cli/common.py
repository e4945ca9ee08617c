"""What every command shares: the consoles, the error mapping, the common options and lookups."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from conforto.errors import ConfortoError, exit_code

if TYPE_CHECKING:
    from collections.abc import Sequence

    from conforto._lifecycle.pipeline import PipelineConfig
    from conforto._registry.model_registry import Registry
    from conforto._tracking import Trackers

console = Console()
err_console = Console(stderr=True)
#: Set by the root command's ``--debug``.
state = {"debug": False}

MeasurementsOpt = Annotated[
    Path | None,
    typer.Option(
        "--measurements",
        help="Measurements file (csv, csv.gz, parquet). "
        "Default: CONFORTO_MEASUREMENTS, else the official file, downloaded once.",
    ),
]
MetadataOpt = Annotated[
    Path | None,
    typer.Option(
        "--metadata",
        help="Building metadata file. Default: CONFORTO_METADATA, else the "
        "official file, downloaded once.",
    ),
]
ModelOpt = Annotated[
    str,
    typer.Option("--model", help="Model directory written by `conforto train`, or 'production'."),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(help="Pipeline config (YAML): train, gate, monitor, tracking."),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr; the exit (code 1 unless told) to raise."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send whatever the work prints on standard output to standard error instead (MLflow's
    "View run …" lines, for one), so that a command's own output (JSON) stands alone there.
    """
    with redirect_stdout(sys.stderr):
        yield


@contextmanager
def errors() -> Iterator[None]:
    """Turn a :class:`ConfortoError` into one line on stderr and exit code 1.

    With ``--debug`` the error propagates with its traceback.
    """
    try:
        yield
    except ConfortoError as exc:
        if state["debug"]:
            raise
        raise fail(str(exc), exit_code(exc)) from None


def out_dir(out: Path | None, *parts: str) -> Path:
    """``out``, or its default ``CONFORTO_HOME/<parts>``."""
    from conforto._settings import get_settings

    return out if out is not None else get_settings().home.joinpath(*parts)


def sources(measurements: Path | None, metadata: Path | None) -> tuple[Path, Path]:
    """The data files: the options, else the settings, else the official files (downloaded)."""
    from conforto._data.download import resolve_sources
    from conforto._settings import get_settings

    return resolve_sources(get_settings(), measurements, metadata)


def pipeline_config(path: Path | None) -> PipelineConfig:
    """The pipeline config from ``path`` (validated), or the defaults."""
    from conforto._lifecycle.pipeline import PipelineConfig
    from conforto._settings import load_yaml_model

    return PipelineConfig() if path is None else load_yaml_model(path, PipelineConfig)


@contextmanager
def stage_run(name: str, stage: str, backends: Sequence[str] | None = None) -> Iterator[Trackers]:
    """A tracked run of one stage command in the configured trackers (``name`` e.g.
    ``model_training``), closed ``FAILED`` when the command fails; tracker failures only warn.
    """
    from conforto._settings import get_settings
    from conforto._tracking import make_tracker, tracked_run

    settings = get_settings()
    tracker = make_tracker(settings, backends)
    with tracked_run(tracker, name, {"stage": stage}, outbox=settings.tracking_outbox) as run:
        yield run


def open_registry() -> Registry:
    """The registry, reconciled with its production alias (as every registry command starts)."""
    from conforto._registry.model_registry import open_registry as open_store
    from conforto._settings import get_settings

    registry = open_store(get_settings())
    for line in registry.reconcile():
        err_console.print(f"[yellow]reconciled:[/] {line}", highlight=False)
    return registry


def refresh_production() -> tuple[Path, str] | None:
    """With a tracking server, bring this machine's production pointer (the cache the service
    and the monitor read, without MLflow) up to the server's alias: the artifact downloaded and
    verified into ``CONFORTO_HOME/registry/cache`` on first use.

    Returns
    -------
    tuple or None
        The verified artifact and its version; ``None`` without a tracking server.
    """
    from conforto._settings import get_settings

    if not get_settings().tracking.uri:
        return None
    found, artifact = open_registry().resolve("production")  # reconciled: the pointer too
    return artifact, found.version


def model_dir(value: str) -> Path:
    """A model directory, or the production version's artifact (reconciled and verified)."""
    if value != "production":
        return Path(value)
    _, artifact = open_registry().resolve("production")
    return artifact
