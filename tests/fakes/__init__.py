"""Stand-ins for the command-line tools of services that cannot run here (``gcloud``, ``gh``)."""

from __future__ import annotations

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
