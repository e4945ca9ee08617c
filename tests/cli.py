"""The ``conforto`` command as a user runs it: in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys


def conforto_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m conforto ARGS`` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "conforto", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
