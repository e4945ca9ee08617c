"""``conforto tracking``: record a build, replay failed tracker calls, import ClearML offline
sessions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from conforto._cli.common import console, errors, open_registry, stage_run
from conforto._settings import get_settings

app = typer.Typer(help="Experiment tracking.", no_args_is_help=True)


@app.command("build")
def build(
    image: Annotated[str, typer.Option(help="The image pushed, by digest.")],
    commit: Annotated[str, typer.Option(help="The commit it was built from.")],
    run_url: Annotated[str, typer.Option(help="The CI run that built it.")] = "",
    version: Annotated[
        str | None,
        typer.Option(
            "--version", help="The registered version baked in; default: production's now."
        ),
    ] = None,
) -> None:
    """Record a built image: a run `image_build` with the image, its commit, the CI run and the
    model version it serves.
    """
    with errors():
        version = version or open_registry().store.alias_version("production") or "none"
        with stage_run("image_build", "build") as run:
            params = {"image": image, "commit": commit, "run_url": run_url}
            run.log_params({**params, "model_version": version})
            run.set_tags({"image": image, "commit": commit, "model_version": version})
    console.print(f"recorded {image} (commit {commit[:12]}, model version {version})")


@app.command("retry")
def retry() -> None:
    """Send tracker calls that failed earlier (kept in CONFORTO_HOME/tracking/outbox.jsonl)."""
    from conforto._tracking import make_tracker, replay_outbox

    with errors():
        settings = get_settings()
        sent = replay_outbox(make_tracker(settings), settings.tracking_outbox)
    console.print(f"sent {sent} kept calls" if sent else "nothing to send")


@app.command("import-offline")
def import_offline() -> None:
    """Send ClearML offline sessions to the server in CLEARML_API_HOST; register their models.

    Models go to ClearML's registry with the lifecycle tags they carry now in the registry.
    Imported sessions are marked and skipped next time.
    """
    from conforto._tracking.clearml import import_offline_sessions

    with errors():
        registry = open_registry()

        def lifecycle(sha: str) -> list[str]:
            for version in registry.store.versions():
                if version.tags.get("artifact_sha256") == sha:
                    return version.lifecycle
            return ["training"]

        # ClearML's own variable, read as the SDK reads it
        cache = Path(os.environ.get("CLEARML_CACHE_DIR", Path.home() / ".clearml" / "cache"))
        done = import_offline_sessions(cache, lifecycle)
    for session, task_id in done:
        console.print(f"{session.name} → task {task_id}", highlight=False)
    console.print(f"imported {len(done)} sessions" if done else "no offline sessions to import")
