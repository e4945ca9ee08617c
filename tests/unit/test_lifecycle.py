"""Promotion, rollback and reconciliation, on a registry held in memory (the fast suite's)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from conforto.errors import RegistryError
from conforto.lifecycle.pointer import read_pointer
from conforto.lifecycle.registry import INTENT, PRODUCTION, Registry
from conforto.lifecycle.store import MemoryStore
from tests.factories import make_frames, train_once, without_file

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small model of synthetic votes, and a copy without its golden predictions (another
    artifact, as far as the registry can tell)."""
    folder = tmp_path_factory.mktemp("synthetic")
    measurements, metadata = make_frames(n=600, buildings=10, seed=5)
    paths = folder / "m.csv", folder / "d.csv"
    measurements.to_csv(paths[0], index=False)
    metadata.to_csv(paths[1], index=False)
    budget = {"folds": 2, "search_trials": 1, "inner_folds": 2, "max_rounds": 10}
    one = train_once(tmp_path_factory, "one", paths, **budget)
    return one, without_file(one, "golden.json", folder / "two")


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
