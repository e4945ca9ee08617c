"""``conforto tracking``: replay failed tracker calls, import ClearML offline sessions."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from conforto.cli.common import console, errors, open_registry
from conforto.settings import get_settings

app = typer.Typer(help="Experiment tracking.", no_args_is_help=True)


@app.command("retry")
def retry() -> None:
    """Send tracker calls that failed earlier (kept in CONFORTO_HOME/tracking/outbox.jsonl)."""
    from conforto.tracking import make_tracker, replay_outbox

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
    from conforto.tracking.clearml import import_offline_sessions

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
