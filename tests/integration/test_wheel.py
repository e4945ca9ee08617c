"""The package as users get it: a wheel built from the tree, installed in a fresh environment."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.factories import REPO

pytestmark = pytest.mark.integration

UV = Path(sys.executable).parent / "uv"


def _run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the tree (the build leaves its folders in the copy)."""
    tree = tmp_path_factory.mktemp("tree")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, tree / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO / "src", tree / "src", ignore=ignore)
    _run(UV, "build", "--wheel", "--quiet", "--out-dir", tree / "dist", cwd=tree)
    (found,) = (tree / "dist").glob("conforto-*.whl")
    return found


def test_the_wheel_ships_every_template(wheel: Path) -> None:
    shipped = set(zipfile.ZipFile(wheel).namelist())
    templates = {
        f"conforto/templates/{p.name}" for p in (REPO / "src/conforto/templates").iterdir()
    }
    assert templates <= shipped
    assert "conforto/py.typed" in shipped


def test_the_installed_wheel_evaluates_a_model_outside_the_checkout(
    wheel: Path, trained_model: Path, holdout_paths: tuple[Path, Path], tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    _run(UV, "venv", "--quiet", "--python", sys.executable, venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    # the locked versions, from uv's cache (make install filled it)
    _run(
        UV,
        "pip",
        "install",
        "--quiet",
        "--python",
        python,
        "--constraint",
        REPO / "requirements.lock",
        f"{wheel}[train]",
        cwd=tmp_path,
    )
    where = _run(python, "-c", "import conforto; print(conforto.__file__)", cwd=tmp_path)
    assert where.stdout.startswith(str(venv))
    out = tmp_path / "evaluation"
    measurements, metadata = holdout_paths
    _run(
        venv / "bin" / "conforto",
        "evaluate",
        "--model",
        trained_model,
        "--measurements",
        measurements,
        "--metadata",
        metadata,
        "--out",
        out,
        cwd=tmp_path,
    )
    assert {p.name for p in out.iterdir()} == {"metrics.json", "report.html", "MODEL_CARD.md"}
    assert "Weakest slices" in (out / "MODEL_CARD.md").read_text()
