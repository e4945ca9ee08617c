"""The registry against a real MLflow SQLite store, checked from outside with MlflowClient."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from typer.testing import CliRunner, Result

from conforto._cli import app
from conforto._model.artifact import read_manifest, save_manifest
from conforto._registry.model_registry import PRODUCTION, Registry, open_registry
from conforto._registry.pointer import artifact_sha256, read_pointer
from conforto._registry.registration import Registration, read_registration
from conforto._serving.app import create_app
from conforto._settings import ServeSettings, Settings, get_settings
from conforto.errors import ArtifactError, RegistryError
from tests.cli import conforto_cli
from tests.factories import variant

pytestmark = pytest.mark.integration
runner = CliRunner()


def _registry() -> Registry:
    return open_registry(get_settings())


def _two_versions(first: Path, second: Path) -> Registry:
    """The registry with ``first`` as version 1 and ``second`` as version 2."""
    registry = _registry()
    registry.register(first)
    registry.register(second)
    return registry


def _client() -> MlflowClient:
    settings = get_settings()
    return MlflowClient(settings.mlflow_uri, settings.mlflow_uri)


def test_register_adds_version_with_lineage_and_is_idempotent(trained_model: Path) -> None:
    registry = _registry()
    version, created, _ = registry.register(trained_model)
    assert created
    assert version.version == "1"
    assert "training" in version.tags
    for key in (
        "lineage.data_sha256",
        "lineage.git_commit",
        "lineage.config_hash",
        "lineage.package_version",
        "metric.macro_f1",
        "artifact_sha256",
    ):
        assert version.tags[key]
    again = registry.register(trained_model)
    assert (again.version.version, again.created, again.unchanged) == ("1", False, False)
    seen = _client().get_model_version("conforto-thermal-sensation", "1")
    assert seen.tags["training"] == version.tags["training"]


def test_a_model_trained_on_nothing_new_registers_nothing_unless_forced(
    trained_model: Path, tmp_path: Path
) -> None:
    """Another artifact of the same data, code and configuration (a retraining on nothing new:
    its manifest's time differs), as the weekly run makes one."""
    retrained = tmp_path / "retrained"
    shutil.copytree(trained_model, retrained)
    manifest = read_manifest(retrained)
    save_manifest(retrained, manifest.model_copy(update={"created": "2027-01-03T04:00:00+00:00"}))
    registry = _registry()
    first = registry.register(trained_model).version
    dead = runner.invoke(app, ["model", "register", str(retrained), "--json"])
    found = {"version": "1", "created": False, "unchanged": True}
    assert json.loads(dead.stdout) == {**found, "judged": False}  # its run died before the gate
    registry.tag(first.version, "rejected", "worse than production")
    told = runner.invoke(app, ["model", "register", str(retrained), "--json"])
    assert told.exit_code == 0, told.output
    assert json.loads(told.stdout) == {**found, "judged": True}
    said = runner.invoke(app, ["model", "register", str(retrained)])
    assert "nothing new: version 1 was trained on the same data, code and" in said.stdout
    assert [v.version for v in registry.store.versions()] == ["1"]
    forced = runner.invoke(app, ["model", "register", str(retrained), "--force", "--json"])
    assert json.loads(forced.stdout) == {
        "version": "2",
        "created": True,
        "unchanged": False,
        "judged": False,
    }


def test_promotion_needs_validation_unless_forced(home: Path, trained_model: Path) -> None:
    registry = _registry()
    registry.register(trained_model)
    with pytest.raises(RegistryError, match="not validated"):
        registry.promote("1")
    registry.tag("1", "validated", "gate passed")
    move = registry.promote("1", reason="gate passed")
    assert move is not None
    assert move.to == "1"
    assert move.previous is None
    assert registry.promote("1") is None  # safe to repeat
    assert (
        str(_client().get_model_version_by_alias("conforto-thermal-sensation", PRODUCTION).version)
        == "1"
    )
    pointer = read_pointer(home / "registry")
    assert pointer is not None
    assert pointer.version == "1"
    assert (Path(pointer.artifact) / "manifest.json").is_file()


def test_models_uri_resolves_to_production(
    home: Path, trained_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.artifacts

    registry = _registry()
    registry.register(trained_model)
    registry.promote("1", force=True)
    uri = get_settings().mlflow_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    local = mlflow.artifacts.download_artifacts(
        "models:/conforto-thermal-sensation@production", dst_path=str(home / "download")
    )
    manifest = json.loads((Path(local) / "manifest.json").read_text())
    assert manifest["files"] == json.loads((trained_model / "manifest.json").read_text())["files"]


def test_lifecycle_from_theconforto_cli(trained_model: Path, second_model: Path) -> None:
    for directory in (trained_model, second_model):
        assert runner.invoke(app, ["model", "register", str(directory)]).exit_code == 0
    assert (
        runner.invoke(app, ["model", "promote", "1", "--force", "--reason", "first"]).exit_code == 0
    )
    assert runner.invoke(app, ["model", "promote", "2", "--force"]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["model", "list", "--json"]).output)
    by_version = {r["version"]: r for r in listed}
    assert by_version["1"]["tags"] == ["training", "archived"]
    assert by_version["2"]["tags"] == ["training", "production"]
    assert by_version["2"]["aliases"] == ["production"]
    assert {"version", "tags", "aliases", "created", "metrics", "artifact"} <= set(by_version["1"])
    table = runner.invoke(app, ["model", "list"]).output
    assert "●" in table
    assert "production" in table

    result = runner.invoke(app, ["model", "rollback", "--reason", "bad latency"])
    assert result.exit_code == 0, result.output
    assert "2 → 1" in result.output
    moves = _registry().audit()
    assert [(m.action, m.previous, m.to) for m in moves] == [
        ("promote", None, "1"),
        ("promote", "1", "2"),
        ("rollback", "2", "1"),
    ]
    assert moves[-1].reason == "bad latency"
    assert runner.invoke(app, ["model", "rollback"]).exit_code == 1  # nothing earlier than 1
    shown = json.loads(runner.invoke(app, ["model", "show", "production"]).output)
    assert shown["version"] == "1"


def test_rollback_keeps_stepping_back(trained_model: Path, second_model: Path) -> None:
    registry = _two_versions(trained_model, second_model)
    for version in ("1", "2", "1", "2"):
        registry.promote(version, force=True)
    assert registry.rollback().to == "1"
    assert registry.rollback().to == "2"
    assert registry.rollback().to == "1"
    with pytest.raises(RegistryError, match="no earlier production version"):
        registry.rollback()


def test_corrupt_artifact_cannot_be_promoted(trained_model: Path) -> None:
    registry = _registry()
    version = registry.register(trained_model).version
    assert version.artifact is not None
    booster = version.artifact / "booster.txt"
    booster.write_text(booster.read_text() + "\n")
    with pytest.raises(ArtifactError, match="corrupt"):
        registry.promote("1", force=True)
    shutil.rmtree(version.artifact)
    with pytest.raises(ArtifactError, match="missing"):
        registry.promote("1", force=True)
    assert registry.store.alias_version(PRODUCTION) is None


def _predict_production(source: Path, output: Path) -> Result:
    args = ["predict", "--model", "production", "--input", str(source), "--output", str(output)]
    return runner.invoke(app, args)


def test_model_production_is_accepted_by_predict(
    trained_model: Path, holdout_paths: tuple[Path, Path], tmp_path: Path
) -> None:
    result = _predict_production(holdout_paths[0], tmp_path / "p.csv")
    assert result.exit_code == 3  # no production model yet: a code of its own, for scripts
    assert "no production model yet" in result.output
    _registry().register(trained_model)
    _registry().promote("1", force=True)
    result = _predict_production(holdout_paths[0], tmp_path / "p.csv")
    assert result.exit_code == 0, result.output


def _state(home: Path) -> tuple[str | None, list[str], str | None, list[str]]:
    registry = _registry()
    alias = registry.store.alias_version(PRODUCTION)
    tagged = [v.version for v in registry.store.versions() if PRODUCTION in v.tags]
    pointer = read_pointer(home / "registry")
    return alias, registry.history(), pointer.version if pointer else None, tagged


@pytest.mark.parametrize("point", ["before-alias", "after-alias", "after-tags", "after-audit"])
def test_sigkill_during_promotion_leaves_old_or_new(
    home: Path, trained_model: Path, second_model: Path, point: str
) -> None:
    registry = _two_versions(trained_model, second_model)
    registry.promote("1", force=True)
    killed = conforto_cli("model", "promote", "2", "--force", env={"CONFORTO_CRASH_AT": point})
    assert killed.returncode == -9, killed.stderr
    alias = _registry().store.alias_version(PRODUCTION)
    assert alias == ("1" if point == "before-alias" else "2")
    listed = conforto_cli("model", "list", "--json")  # any command reconciles first
    assert listed.returncode == 0, listed.stderr
    alias, history, pointer, tagged = _state(home)
    assert history[-1] == alias
    assert pointer == alias
    assert tagged == [alias]
    assert not (home / "registry" / "intent.json").exists()


def test_sigkill_during_rollback_then_reconcile(
    home: Path, trained_model: Path, second_model: Path
) -> None:
    registry = _two_versions(trained_model, second_model)
    registry.promote("1", force=True)
    registry.promote("2", force=True)
    killed = conforto_cli("model", "rollback", env={"CONFORTO_CRASH_AT": "after-alias"})
    assert killed.returncode == -9
    conforto_cli("model", "list", "--json")
    alias, history, pointer, tagged = _state(home)
    assert (alias, history, pointer, tagged) == ("1", ["1"], "1", ["1"])


def test_concurrent_promotions_are_serialised(
    home: Path, trained_model: Path, second_model: Path
) -> None:
    _two_versions(trained_model, second_model)
    env = {**os.environ}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "conforto", "model", "promote", v, "--force"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for v in ("1", "2")
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
    moves = _registry().audit()
    assert len(moves) == 2
    assert moves[0].previous is None
    assert moves[1].previous == moves[0].to  # the second saw the first's result
    alias, _history, pointer, tagged = _state(home)
    assert alias == pointer == moves[1].to
    assert tagged == [alias]


def test_a_download_carries_its_registry_version_to_the_service(
    trained_model: Path, tmp_path: Path
) -> None:
    """`model download` writes the version beside the copy; a service serving the copy (an
    image's baked model) reports it; the record moved to another artifact is refused."""
    assert runner.invoke(app, ["model", "register", str(trained_model)]).exit_code == 0
    copy = tmp_path / "copy"
    downloaded = runner.invoke(app, ["model", "download", "1", "--out", str(copy)])
    assert downloaded.exit_code == 0, downloaded.output
    assert read_registration(copy) == Registration(
        "1", get_settings().tracking.model_name, artifact_sha256(copy)
    )
    settings = Settings(serve=ServeSettings(log_url=f"sqlite:///{tmp_path / 'log.db'}"))
    room = {"ta": 24.5, "tr": 25.0, "rh": 55.0, "vel": 0.15, "met": 1.1, "clo": 0.6}
    with TestClient(create_app(copy, settings=settings)) as client:
        assert client.get("/ready").json()["model_version"] == "1"
        assert client.post("/predict", json=room).json()["model_version"] == "1"
    assert runner.invoke(app, ["model", "register", str(copy)]).exit_code == 0  # the same: v1
    assert [v.version for v in _registry().store.versions()] == ["1"]

    changed = variant(copy, tmp_path / "changed")
    shutil.copy(copy / "registered.json", changed)  # the record came along, the manifest moved
    with TestClient(create_app(changed, settings=settings)) as client:
        refused = client.get("/ready")
    assert refused.status_code == 503
    assert "registered.json says version 1 of another artifact" in refused.text
    told = runner.invoke(app, ["model", "register", str(changed)])
    assert told.exit_code == 1
    assert "remove it, or download the version again" in told.output
    (changed / "registered.json").unlink()
    forced = runner.invoke(app, ["model", "register", str(changed), "--force"])
    assert forced.exit_code == 0, forced.output
