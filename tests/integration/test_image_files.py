"""The image's recipe, checked without building it (`make test-image` builds and runs it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import REPO

pytestmark = pytest.mark.integration


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run(
        [hadolint, REPO / "Dockerfile"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dockerfile_runs_a_fixed_non_root_user_with_a_healthcheck_and_no_curl() -> None:
    text = (REPO / "Dockerfile").read_text()
    final = text[text.rindex("\nFROM ") :]
    assert "USER 10001:10001" in final
    assert "HEALTHCHECK" in final
    assert "curl" not in text
    assert "ARG BASE=python:3.11-slim" in text  # the official slim image by default


def test_the_build_context_leaves_out_history_tests_and_data() -> None:
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    assert ignored.index("*") < min(i for i, line in enumerate(ignored) if line.startswith("!"))
    allowed = {line[1:] for line in ignored if line.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "README.md",
        "requirements-serve.lock",  # what a build without a wheelhouse installs from PyPI
        "src/",
        "wheelhouse/",
        "deploy/no-model/",
        "model/",
    }
    done = subprocess.run(
        ["bash", "-n", REPO / "deploy/image/debian-base.sh"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
