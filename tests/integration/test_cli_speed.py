"""The command line loads only what a command uses: listing the commands and the embedded
registry's versions import neither MLflow nor the data and training libraries.

How fast that is lives in ``bench/cli.py``; here, what is imported, and that the index the
list answers from never says anything the registry would not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from conforto._registry.model_registry import open_registry
from conforto._settings import get_settings
from tests.cli import conforto_cli

if TYPE_CHECKING:
    from pathlib import Path

    from conforto._registry.model_registry import Registry

pytestmark = pytest.mark.integration

#: What a command that reads no data, trains nothing and reaches no tracker must not import.
HEAVY = ("mlflow", "pandas", "lightgbm", "sklearn", "scipy", "clearml", "matplotlib", "pandera")


def _imported(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``conforto ARGS`` with ``-X importtime``: what it did, and the top-level packages
    it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "conforto", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
    )
    packages = {
        line.split("|")[-1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return done, packages


def _two_versions(first: Path, second: Path, production: str) -> Registry:
    """This home's registry with ``first`` and ``second`` as versions 1 and 2."""
    registry = open_registry(get_settings())
    registry.register(first)
    registry.register(second)
    registry.promote(production, force=True)
    return registry


def test_listing_the_commands_imports_nothing_heavy() -> None:
    """Not even NumPy, httpx or the settings: the list is a table of names and their help."""
    done, packages = _imported("--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "model" in done.stdout
    light = {*HEAVY, "numpy", "httpx", "pydantic_settings"}
    assert packages.isdisjoint(light), packages & light
    assert "conforto" in packages  # the measurement saw the package's own imports


def test_model_list_answers_from_the_index_without_mlflow(
    trained_model: Path, second_model: Path
) -> None:
    registry = _two_versions(trained_model, second_model, production="1")
    expected = [v.record() for v in registry.store.versions()]

    done, packages = _imported("model", "list", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == expected
    assert packages.isdisjoint(HEAVY), packages & set(HEAVY)


def test_the_index_is_not_trusted_once_the_store_changed_behind_it(
    trained_model: Path, second_model: Path
) -> None:
    """A tag set by another program, an interrupted move, a lost pointer: the list reads the
    registry again (and reconciles), never the outdated index."""
    registry = _two_versions(trained_model, second_model, production="1")

    registry.store.set_tag("2", "validated", "by another program")  # not through the registry
    listed = json.loads(conforto_cli("model", "list", "--json").stdout)
    assert "validated" in listed[1]["tags"]

    (get_settings().registry_dir / "production.json").unlink()
    done = conforto_cli("model", "list", "--json")
    assert done.returncode == 0, done.stderr
    assert "reconciled: pointer: now version 1" in done.stderr
    assert (get_settings().registry_dir / "production.json").is_file()

    registry.store.set_alias("production", "2")  # a move interrupted after the alias
    done = conforto_cli("model", "list", "--json")
    assert done.returncode == 0, done.stderr
    assert "reconciled:" in done.stderr
    production = [v["version"] for v in json.loads(done.stdout) if "production" in v["tags"]]
    assert production == ["2"]


def test_model_show_answers_from_the_index_and_refuses_what_the_registry_would(
    trained_model: Path, second_model: Path
) -> None:
    registry = _two_versions(trained_model, second_model, production="2")

    done, packages = _imported("model", "show", "production")
    assert done.returncode == 0, done.stderr[-2000:]
    shown = json.loads(done.stdout)
    assert shown["version"] == "2"
    assert shown["local_artifact"] == str(registry.store.get("2").artifact)
    assert packages.isdisjoint(HEAVY), packages & set(HEAVY)

    missing = conforto_cli("model", "show", "7")
    assert missing.returncode == 1
    assert "version '7' of conforto-thermal-sensation does not exist" in missing.stderr

    artifact = registry.store.get("1").artifact
    assert artifact is not None
    (artifact / "golden.json").write_text("{}")  # a changed file: the registry says so
    corrupt = conforto_cli("model", "show", "1")
    assert corrupt.returncode == 1
    assert "does not match" in corrupt.stderr or "corrupt" in corrupt.stderr


def test_a_home_without_a_registry_lists_nothing_and_makes_nothing(home: Path) -> None:
    import shutil

    shutil.rmtree(home / "mlflow")  # a new machine's home: no store yet
    done, packages = _imported("model", "list", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == []
    assert packages.isdisjoint(HEAVY), packages & set(HEAVY)
    assert not (home / "mlflow").exists()
    shown = conforto_cli("model", "show", "production")
    assert shown.returncode == 3
    assert "no production model yet" in shown.stderr
