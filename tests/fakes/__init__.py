"""Stand-ins for the command-line tools of services that cannot run here (``gcloud``, ``gh``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def install(bin_dir: Path, name: str) -> Path:
    """Put the fake ``name`` (``tests/fakes/<name>.py``) in ``bin_dir`` as a command, run by
    this interpreter; its path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    command = bin_dir / name
    command.write_text(f'#!/bin/sh\nexec {sys.executable} {Path(__file__).parent / name}.py "$@"\n')
    command.chmod(0o755)
    return command


def describe_cloud(
    folder: Path,
    project: str,
    service_accounts: list[str],
    secrets: dict[str, str],
    channels: tuple[str, ...] = (),
) -> None:
    """What exists in the fake ``gcloud``'s Google Cloud (its ``FAKE_GCLOUD_DIR`` is
    ``folder``): the project, its service accounts, its secrets (name → value), its
    notification channels."""
    folder.mkdir(parents=True, exist_ok=True)
    cloud = {
        "project": project,
        "service_accounts": service_accounts,
        "secrets": secrets,
        "channels": list(channels),
    }
    (folder / "cloud.json").write_text(json.dumps(cloud))
