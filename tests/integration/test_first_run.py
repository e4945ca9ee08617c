"""A new project's first run: nothing in production yet. Every command that needs a production
model says so in one line and exits 3; the monitor's ``--if-present`` skips cleanly, as the
weekly training workflow's first run needs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.cli import conforto_cli

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_commands_that_need_a_production_model_exit_3_in_one_line(
    holdout_paths: tuple[Path, Path], tmp_path: Path
) -> None:
    data = str(holdout_paths[0])
    for args in (
        ("monitor", "drift", "--input", data),
        ("monitor", "performance", "--input", data),
        ("monitor", "check"),
        ("predict", "--model", "production", "--input", data, "--output", str(tmp_path / "p")),
        ("model", "show", "production"),
    ):
        done = conforto_cli(*args)
        assert done.returncode == 3, (args, done.stderr)
        assert "no production model yet" in _one_line(done.stderr), args
        assert "conforto model promote" in done.stderr


def test_the_monitor_skips_cleanly_with_if_present(holdout_paths: tuple[Path, Path]) -> None:
    data = str(holdout_paths[0])
    for args in (
        ("monitor", "drift", "--input", data, "--season-matched"),
        ("monitor", "performance", "--input", data),
        ("monitor", "check"),
    ):
        done = conforto_cli(*args, "--if-present")
        assert done.returncode == 0, (args, done.stderr)
        assert "no production model yet: nothing to judge (skipped" in done.stdout
