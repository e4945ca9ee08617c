"""`conforto release`: the notes of the production model, from the registry."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

from conforto._registry.model_registry import open_registry
from conforto._settings import get_settings
from tests.cli import conforto_cli

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def test_release_notes_compare_production_with_the_version_before(
    trained_model: Path, second_model: Path, tmp_path: Path
) -> None:
    registry = open_registry(get_settings())
    registry.register(trained_model)
    registry.register(second_model)
    registry.promote("1", force=True)
    registry.promote("2", force=True)
    done = conforto_cli("release", "--tag", "v0.2.0", "--out", str(tmp_path / "dist"))
    assert done.returncode == 0, done.stdout + done.stderr
    notes = (tmp_path / "dist/CHANGELOG.md").read_text()
    assert notes.startswith("## v0.2.0 (")
    assert "Model version 2 (previous production: version 1)" in notes
    first, second = (registry.store.get(v).metrics["macro_f1"] for v in ("1", "2"))
    assert f"| macro f1 | {second:.3f} | {first:.3f} | {second - first:+.3f} |" in notes
    assert (tmp_path / "dist/MODEL_CARD.md").read_text() == (
        second_model / "MODEL_CARD.md"
    ).read_text()


def test_the_version_comes_from_the_git_tag(trained_model: Path, tmp_path: Path) -> None:
    registry = open_registry(get_settings())
    registry.register(trained_model)
    registry.promote("1", force=True)
    untagged = conforto_cli("release", "--out", str(tmp_path / "dist"))
    assert untagged.returncode == 1
    assert "the commit has no tag" in untagged.stderr
    git = ["git", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run(
        [
            *git,
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        check=True,
    )
    subprocess.run([*git, "tag", "v1.0.0"], check=True)
    tagged = conforto_cli("release", "--out", str(tmp_path / "dist"))
    assert tagged.returncode == 0, tagged.stderr
    assert (tmp_path / "dist/CHANGELOG.md").read_text().startswith("## v1.0.0 (")
    assert "previous production" not in (tmp_path / "dist/CHANGELOG.md").read_text()
