"""A bare ``pytest`` runs what needs nothing but the locked environment, and says what it left
out and how to run it; ``-m`` or a path selects a tier that needs more."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.factories import REPO

pytestmark = pytest.mark.integration


def _collect(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_a_bare_pytest_leaves_out_the_tiers_that_need_more_and_names_how_to_run_them() -> None:
    out = _collect()
    collected = [line for line in out.splitlines() if "::" in line]
    assert any(line.startswith("tests/unit/") for line in collected)
    assert any(line.startswith("tests/integration/") for line in collected)
    for tier in ("e2e", "load", "image", "spark"):
        assert not any(line.startswith(f"tests/{tier}/") for line in collected)
        assert f" {tier} tests (they need" in out
    assert "test_database_down_keeps_rows_on_disk_then_stores_them" not in out  # PostgreSQL
    assert "make test-image" in out
    assert "make test-spark" in out


def test_a_marker_or_a_path_selects_a_tier() -> None:
    by_marker = [line for line in _collect("-m", "e2e").splitlines() if "::" in line]
    assert by_marker
    assert all(line.startswith("tests/e2e/") for line in by_marker)
    by_path = _collect("tests/load")
    assert "tests/load/" in by_path
    assert "left out" not in by_path
