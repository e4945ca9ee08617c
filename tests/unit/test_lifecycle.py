"""Promotion, rollback, reconciliation and upgrades, on a registry held in memory (the fast
suite's)."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

import pytest

from conforto.errors import ArtifactError, RegistryError
from conforto.lifecycle.pointer import artifact_sha256, read_pointer
from conforto.lifecycle.registry import INTENT, PRODUCTION, Registry
from conforto.lifecycle.store import MemoryStore
from conforto.lifecycle.upgrade import upgrade
from conforto.model.artifact import MANIFEST, load_model, upgrade_format
from tests.factories import make_frames, train_once, variant

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small model of synthetic votes, and a variant of it (another artifact, as far as the
    registry can tell)."""
    folder = tmp_path_factory.mktemp("synthetic")
    measurements, metadata = make_frames(n=600, buildings=10, seed=5)
    paths = folder / "m.csv", folder / "d.csv"
    measurements.to_csv(paths[0], index=False)
    metadata.to_csv(paths[1], index=False)
    budget = {"folds": 2, "search_trials": 1, "inner_folds": 2, "max_rounds": 10}
    one = train_once(tmp_path_factory, "one", paths, **budget)
    return one, variant(one, folder / "two")


@pytest.fixture
def registry(tmp_path: Path, tiny_models: tuple[Path, Path]) -> Registry:
    """Both models registered, nothing in production yet."""
    registry = Registry(MemoryStore(), tmp_path / "registry")
    for model in tiny_models:
        registry.register(model)
    return registry


def test_only_validated_versions_are_promoted_unless_forced(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="not validated"):
        registry.promote("1")
    registry.store.set_tag("1", "validated", "")
    move = registry.promote("1")
    assert move is not None
    assert (move.action, move.to, move.previous) == ("promote", "1", None)
    assert registry.promote("1") is None  # already there: nothing moves
    assert registry.store.alias_version(PRODUCTION) == "1"


def test_rollback_steps_back_through_the_history_and_moves_the_pointer(registry: Registry) -> None:
    registry.promote("1", force=True)
    registry.promote("2", force=True)
    assert "archived" in registry.store.get("1").tags
    assert registry.history() == ["1", "2"]
    move = registry.rollback(reason="bad answers")
    assert (move.to, move.previous, move.reason) == ("1", "2", "bad answers")
    assert registry.store.alias_version(PRODUCTION) == "1"
    assert PRODUCTION in registry.store.get("1").tags
    assert "archived" in registry.store.get("2").tags
    pointer = read_pointer(registry.directory)
    assert pointer is not None
    assert pointer.version == "1"
    with pytest.raises(RegistryError, match="no earlier production version"):
        registry.rollback()


class FailingAfterAlias(MemoryStore):
    """A store whose connection drops right after the alias moved (a crash mid-promotion)."""

    armed = down = False

    def set_alias(self, alias: str, version: str) -> None:
        super().set_alias(alias, version)
        self.down = self.armed

    def set_tag(self, version: str, key: str, value: str) -> None:
        if self.down:
            raise ConnectionError("registry unreachable")
        super().set_tag(version, key, value)


def test_a_move_interrupted_after_the_alias_is_completed_by_the_next_command(
    tmp_path: Path, tiny_models: tuple[Path, Path]
) -> None:
    registry = Registry(FailingAfterAlias(), tmp_path / "registry")
    for model in tiny_models:
        registry.register(model)
    registry.promote("1", force=True)
    store = registry.store
    assert isinstance(store, FailingAfterAlias)
    store.armed = True
    with pytest.raises(ConnectionError):
        registry.promote("2", force=True, reason="better")
    intent = json.loads((registry.directory / INTENT).read_text())
    assert intent["to"] == "2"  # what was under way is on disk
    assert registry.history() == ["1"]  # the audit log has not heard of it yet

    store.armed = store.down = False
    repaired = registry.reconcile()
    assert registry.history() == ["1", "2"]
    assert registry.audit()[-1].reason == "better (completed after an interruption)"
    assert PRODUCTION in store.get("2").tags
    assert "archived" in store.get("1").tags
    pointer = read_pointer(registry.directory)
    assert pointer is not None
    assert pointer.version == "2"
    assert any(r.startswith("pointer") for r in repaired)
    assert not (registry.directory / INTENT).exists()
    assert registry.reconcile() == []  # all agree now


def _registered_as_format_1(registry: Registry, version: str) -> Path:
    """Rewrite a registered version as the previous release registered it: format 1."""
    artifact = registry.store.local_artifact(registry.store.get(version))
    manifest = json.loads((artifact / MANIFEST).read_text())
    text = json.dumps({**manifest, "format_version": 1}, indent=2) + "\n"
    (artifact / MANIFEST).write_text(text)
    registry.store.set_tag(version, "artifact_sha256", artifact_sha256(artifact))
    return artifact


@pytest.fixture
def older(tmp_path: Path, tiny_models: tuple[Path, Path]) -> Registry:
    """Copies of both models registered by the previous release (format 1), version 1 in
    production."""
    registry = Registry(MemoryStore(), tmp_path / "registry")
    for model in tiny_models:
        registry.register(shutil.copytree(model, tmp_path / model.name))
    registry.promote("1", force=True)
    for version in ("1", "2"):
        _registered_as_format_1(registry, version)
    registry.refresh_pointer(registry.store.get("1"))
    return registry


def test_upgrade_rewrites_format_1_versions_and_the_pointer_follows(older: Registry) -> None:
    artifact = older.store.local_artifact(older.store.get("1"))
    with pytest.raises(ArtifactError, match=r"format 1.*conforto model upgrade"):
        load_model(artifact)
    history = older.history()

    assert upgrade(older, command="test") == ["1", "2"]
    for version in older.store.versions():
        found = older.store.local_artifact(version)
        assert version.tags["artifact_sha256"] == artifact_sha256(found)
        assert load_model(found).manifest["format_version"] == 2
    pointer = read_pointer(older.directory)
    assert pointer is not None
    assert (pointer.version, pointer.sha256) == ("1", artifact_sha256(artifact))
    moves = [m for m in older.audit() if m.action == "upgrade"]
    assert [(m.to, m.reason, m.command) for m in moves] == [
        ("1", "artifact format 1 → 2", "test"),
        ("2", "artifact format 1 → 2", "test"),
    ]
    assert older.history() == history  # upgrades are not production moves
    assert upgrade(older) == []  # nothing left to do


def test_an_upgrade_interrupted_before_its_checksum_was_recorded_is_completed(
    older: Registry,
) -> None:
    artifact = older.store.local_artifact(older.store.get("2"))
    assert upgrade_format(artifact)  # the manifest rewritten, then the process died
    with pytest.raises(ArtifactError, match="registered checksum"):
        older.resolve("2")
    assert upgrade(older, ["2"]) == ["2"]
    assert older.audit()[-1].reason == "artifact format 2: checksum recorded"
    assert older.resolve("2").artifact == artifact


def test_upgrade_refuses_an_artifact_changed_since_it_was_registered(older: Registry) -> None:
    artifact = older.store.local_artifact(older.store.get("1"))
    manifest = json.loads((artifact / MANIFEST).read_text())
    (artifact / MANIFEST).write_text(json.dumps({**manifest, "seed": 99}, indent=2) + "\n")
    before = (artifact / MANIFEST).read_bytes()
    with pytest.raises(ArtifactError, match="registered checksum"):
        upgrade(older, ["1"])
    assert (artifact / MANIFEST).read_bytes() == before
    assert [m for m in older.audit() if m.action == "upgrade"] == []
