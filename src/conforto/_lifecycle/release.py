"""A release's notes: the version from the git tag, the production model against the one before.

``conforto release`` writes ``dist/CHANGELOG.md`` (this release's entry: the model version,
its cross-validated metrics against the previous production version's, the data it learnt from,
its lineage) and ``dist/MODEL_CARD.md`` (the model's card); the workflow attaches both to the
GitHub release of the tag.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from conforto._fileio import atomic_write_text
from conforto._registry.model_registry import PRODUCTION, Registry
from conforto.errors import ConfigError

if TYPE_CHECKING:
    from conforto._tracking.model_version import ModelVersion

METRICS = ("accuracy", "macro_f1", "log_loss", "ece")


def git_tag(cwd: Path | None = None) -> str:
    """The tag of the commit checked out.

    Raises
    ------
    ConfigError
        When the commit has no tag.
    """
    done = subprocess.run(
        ["git", "describe", "--tags", "--exact-match"],  # noqa: S607 - git from PATH
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        timeout=10,
    )
    if done.returncode != 0:
        raise ConfigError(
            "the commit has no tag: tag it (git tag v1.2.0) or pass --tag to name the release."
        )
    return done.stdout.strip()


def entry(tag: str, current: ModelVersion, previous: ModelVersion | None) -> str:
    """The changelog entry of a release (Markdown)."""
    day = datetime.now(UTC).date().isoformat()
    lineage = current.lineage
    lines = [f"## {tag} ({day})", ""]
    before = f" (previous production: version {previous.version})" if previous else ""
    lines += [
        f"Model version {current.version}{before}, trained on data sha256 "
        f"`{lineage.get('data_sha256', '?')[:16]}` ({lineage.get('data_rows', '?')} votes).",
        "",
        f"| metric | v{current.version} | "
        + (f"v{previous.version} | change |" if previous else "")
        + ("\n| --- | ---: | ---: | ---: |" if previous else "\n| --- | ---: |"),
    ]
    for name in METRICS:
        now = current.metrics.get(name)
        if now is None:
            continue
        row = f"| {name.replace('_', ' ')} | {now:.3f} |"
        if previous is not None and name in previous.metrics:
            was = previous.metrics[name]
            row += f" {was:.3f} | {now - was:+.3f} |"
        lines.append(row)
    lines += [
        "",
        f"Artifact sha256 `{current.tags.get('artifact_sha256', '?')[:16]}`, git commit "
        f"`{lineage.get('git_commit', '?')[:12]}`, conforto {lineage.get('package_version', '?')}.",
        "",
    ]
    return "\n".join(lines)


def write_release(
    registry: Registry, tag: str, out: Path, version: str = PRODUCTION
) -> dict[str, Path]:
    """Write the release's ``CHANGELOG.md`` entry and ``MODEL_CARD.md`` of ``version`` (the one
    shipped; default: production's) into ``out``.

    Raises
    ------
    RegistryError
        When nothing is in production, or the version does not exist.
    """
    current, artifact = registry.resolve(version)
    earlier = [v for v in registry.history()[:-1] if v != current.version]
    previous = registry.store.get(earlier[-1]) if earlier else None
    out.mkdir(parents=True, exist_ok=True)
    paths = {"CHANGELOG.md": atomic_write_text(out / "CHANGELOG.md", entry(tag, current, previous))}
    card = artifact / "MODEL_CARD.md"
    if card.is_file():
        paths["MODEL_CARD.md"] = Path(shutil.copyfile(card, out / "MODEL_CARD.md"))
    return paths
