"""The ``conforto`` command line: thin commands over the library, one module per group.

:mod:`.common` holds the error mapping and the shared options, :mod:`.render` the terminal
output; every other module is a command group. A group's module is imported when that group
runs (:class:`LazyGroup`): ``conforto --help`` and each command load only what they use.

May import: everything.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Annotated, NamedTuple

import typer
from typer.core import TyperGroup

from conforto._cli.common import err_console, fail, state

if TYPE_CHECKING:
    from typer import _click


class Entry(NamedTuple):
    """A top-level command or group, loaded when it runs."""

    #: The module defining it, and its attribute: a ``typer.Typer`` (a group) or a function.
    module: str
    attribute: str
    #: Its one-line help, listed by ``conforto --help`` without importing the module (a test
    #: holds it to the command's own).
    help: str
    hidden: bool = False


#: Every top-level command and group, in the order ``conforto --help`` lists them.
COMMANDS = {
    "train": Entry(
        "conforto._cli.train",
        "train",
        "Train the thermal-sensation model with building-grouped cross-validation.",
    ),
    "evaluate": Entry(
        "conforto._cli.train",
        "evaluate",
        "Score a trained model on other labelled data (for example unseen buildings).",
    ),
    "predict": Entry(
        "conforto._cli.train",
        "predict",
        "Score a CSV file: one output row per input row, in order.",
    ),
    "gate": Entry(
        "conforto._cli.train",
        "gate",
        "The promotion gate: tag VERSION `validated`, or `rejected` with the failed checks.",
    ),
    # the spelling before 0.2
    "validate-model": Entry("conforto._cli.train", "gate", "The promotion gate.", hidden=True),
    "serve": Entry(
        "conforto._cli.serve",
        "serve",
        "Serve predictions over HTTP (FastAPI + uvicorn); docs at /docs.",
    ),
    "smoke": Entry(
        "conforto._cli.deploy",
        "smoke",
        "Check a running service: /health, /ready, and the model's golden predictions.",
    ),
    "release": Entry(
        "conforto._cli.deploy",
        "release",
        "Write the release notes of the model shipped: dist/CHANGELOG.md, dist/MODEL_CARD.md.",
    ),
    "data": Entry(
        "conforto._cli.data", "app", "Download, validate and profile thermal-comfort data."
    ),
    "model": Entry(
        "conforto._cli.model", "app", "The model registry: register, list, promote, roll back."
    ),
    "pipeline": Entry("conforto._cli.train", "pipeline_app", "The gated training pipeline."),
    "tracking": Entry("conforto._cli.tracking", "app", "Experiment tracking."),
    "monitor": Entry(
        "conforto._cli.monitor",
        "app",
        "Watch the model in production: input drift, live performance.",
    ),
    "notify": Entry("conforto._cli.notify", "app", "Slack notifications of lifecycle events."),
    "deploy": Entry(
        "conforto._cli.deploy",
        "app",
        "Deploy: blue/green on this machine behind nginx, status, rollback, stop.",
    ),
}


def load(name: str) -> _click.Command:
    """The click command of the top-level command or group ``name`` (its module imported)."""
    entry = COMMANDS[name]
    found = getattr(importlib.import_module(entry.module), entry.attribute)
    if isinstance(found, typer.Typer):
        command: _click.Command = typer.main.get_group(found)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name, hidden=entry.hidden)(found)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """The root group: a command's module is imported when it runs, not to list it."""

    _listing = False

    def list_commands(self, ctx: _click.Context) -> list[str]:  # noqa: ARG002 - click's API
        """Every command's name, in :data:`COMMANDS`' order."""
        return list(COMMANDS)

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:  # noqa: ARG002
        """The command ``cmd_name``: loaded, or while help is listed, its name and help only."""
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        if self._listing:
            return typer.core.TyperCommand(cmd_name, help=entry.help, hidden=entry.hidden)
        return load(cmd_name)

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        """The root's help, listing the commands from :data:`COMMANDS`."""
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="conforto",
    cls=LazyGroup,
    help="Predict occupants' thermal sensation; validate data, train, serve, monitor.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from conforto._cli.common import console
        from conforto._lineage import package_version

        console.print(f"conforto {package_version()}")
        raise typer.Exit


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[  # noqa: ARG001 - handled by its eager callback
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """conforto: thermal sensation prediction with a complete MLOps lifecycle."""
    from rich.logging import RichHandler

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
