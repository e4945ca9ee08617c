"""The ``conforto`` command line: thin commands over the library, one module per group.

:mod:`.common` holds the error mapping and the shared options, :mod:`.render` the terminal
output; every other module is a command group.

May import: everything.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.logging import RichHandler

import conforto
from conforto.cli import data, deploy, model, monitor, notify, serve, tracking, train
from conforto.cli.common import console, err_console, fail, state

app = typer.Typer(
    name="conforto",
    help="Predict occupants' thermal sensation; validate data, train, serve, monitor.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.add_typer(model.app, name="model")
app.add_typer(train.pipeline_app, name="pipeline")
app.add_typer(tracking.app, name="tracking")
app.add_typer(monitor.app, name="monitor")
app.add_typer(notify.app, name="notify")
app.add_typer(deploy.app, name="deploy")
app.command("train")(train.train)
app.command("evaluate")(train.evaluate)
app.command("predict")(train.predict)
app.command("gate")(train.gate)
app.command("validate-model", hidden=True)(train.gate)  # the spelling before 0.2
app.command("serve")(serve.serve)
app.command("smoke")(deploy.smoke)
app.command("release")(deploy.release)


def _version(value: bool) -> None:
    if value:
        console.print(f"conforto {conforto.__version__}")
        raise typer.Exit


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[  # noqa: ARG001 - handled by its eager callback
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """conforto: thermal sensation prediction with a complete MLOps lifecycle."""
    state["debug"] = debug
    logging.basicConfig(
        level=logging.INFO if debug else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=False)],
        force=True,
    )


#: Modules of the ``train`` extra: a command that needs one says how to install it.
TRAIN_EXTRA = frozenset(
    [
        "pandas",
        "pyarrow",
        "pandera",
        "pythermalcomfort",
        "scipy",
        "sklearn",
        "optuna",
        "matplotlib",
        "jinja2",
        "yaml",
        "filelock",
        "slack_sdk",
        "mlflow",
        "clearml",
        "alembic",
    ]
)


def run() -> None:
    """The ``conforto`` command: :data:`app`, with a clear error when the base install (the
    serving set, as in the container image) lacks what a command needs.
    """
    try:
        app(prog_name="conforto")
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in TRAIN_EXTRA or state["debug"]:
            raise
        raise SystemExit(
            fail(
                f"this command needs {exc.name}, of conforto's training dependencies: "
                "pip install 'conforto[train]'."
            ).exit_code
        ) from None


__all__ = ["app", "run"]
