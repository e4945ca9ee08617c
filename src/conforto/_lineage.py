"""Where a model comes from: code, config and package fingerprints."""

from __future__ import annotations

import getpass
import hashlib
import json
import platform
import subprocess
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any


@cache
def package_version() -> str:
    """Conforto's version, from its installed metadata (``0.0.0`` in a source tree that was
    never installed).
    """
    try:
        return pkg_version("conforto")
    except PackageNotFoundError:  # pragma: no cover - a source tree without install
        return "0.0.0"


def timestamp() -> str:
    """Now, in UTC to the second (ISO 8601): when a record (audit line, deploy, decision) was
    made.
    """
    return datetime.now(UTC).isoformat(timespec="seconds")


def current_user() -> str:
    """Who runs this process, as records name them (``unknown`` when the system cannot tell)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def git_commit() -> str | None:
    """The checkout's commit, or ``None`` outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH, as a developer runs it
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape a model's numbers."""
    names = (
        "conforto",
        "numpy",
        "pandas",
        "lightgbm",
        "scikit-learn",
        "optuna",
        "pythermalcomfort",
    )
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = pkg_version(name)
        except PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def config_hash(config: dict[str, Any]) -> str:
    """SHA-256 of a training config (as stored in a manifest), independent of key order."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def code_fingerprint() -> str:
    """SHA-256 of the package's source files: changes whenever the code that trains changes."""
    digest = hashlib.sha256()
    root = Path(__file__).parent
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".html", ".md"):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
