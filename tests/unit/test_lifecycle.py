"""Promotion, rollback, reconciliation and upgrades, on a registry held in memory (the fast
suite's), with each journal: a local folder (embedded) and records of the store (a server's)."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

import pytest

from conforto._model.artifact import MANIFEST, load_model, upgrade_format
from conforto._registry.journal import INTENT
from conforto._registry.model_registry import PRODUCTION, Registry
from conforto._registry.pointer import artifact_sha256, read_pointer
from conforto._registry.shared_journal import SharedJournal
from conforto._registry.store import MemoryStore
from conforto._registry.upgrade import upgrade
from conforto.errors import ArtifactError, RegistryError

if TYPE_CHECKING:
    from pathlib import Path

    from conforto._predictions.records import Kind


@pytest.fixture(params=["file", "shared"])
def journal(request: pytest.FixtureRequest) -> str:
    """Which journal the registry keeps: a local folder's, or the store's own records."""
    return str(request.param)


def _registry(store: MemoryStore, directory: Path, journal: str) -> Registry:
    shared = SharedJournal(store, lease_s=60.0) if journal == "shared" else None
    return Registry(store, directory, shared)


@pytest.fixture
def registry(tmp_path: Path, tiny_models: tuple[Path, Path], journal: str) -> Registry:
    """Both models registered, nothing in production yet."""
    registry = _registry(MemoryStore(), tmp_path / "registry", journal)
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
    tmp_path: Path, tiny_models: tuple[Path, Path], journal: str
) -> None:
    registry = _registry(FailingAfterAlias(), tmp_path / "registry", journal)
    for model in tiny_models:
        registry.register(model)
    registry.promote("1", force=True)
    store = registry.store
    assert isinstance(store, FailingAfterAlias)
    store.armed = True
    with pytest.raises(ConnectionError):
        registry.promote("2", force=True, reason="better")
    intent = registry.journal.interrupted()
    assert intent is not None
    assert intent.to == "2"  # what was under way is kept
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
    assert registry.journal.interrupted() is None
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
def older(tmp_path: Path, tiny_models: tuple[Path, Path], journal: str) -> Registry:
    """Copies of both models registered by the previous release (format 1), version 1 in
    production."""
    registry = _registry(MemoryStore(), tmp_path / "registry", journal)
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
        assert load_model(found).manifest.format_version == 2
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


def _shadowed(url: str, version: str, ids: range, kind: Kind = "occupant") -> None:
    """Predictions of production's (one per id, asked as ``kind``), each scored by ``version``
    as a shadow."""
    import time

    from conforto._predictions.records import PredictionRow, Row, ShadowRow
    from conforto._predictions.store import LogDatabase
    from tests.factories import answer

    rows: list[Row] = []
    for i in ids:
        made = answer("warm", f"{i:032d}", model_version="1")
        rows += [
            PredictionRow.of(made, {"ta": 25.0}, 1.0, None, now=time.time(), kind=kind),
            ShadowRow(f"{i:032d}", time.time(), version, "warm", 0.2, 0.2, 0.6, 2.0),
        ]
    database = LogDatabase(url)
    database.write(rows)
    database.close()


@pytest.mark.parametrize("journal", ["file"])
def test_a_promotion_waits_for_its_shadow_period(registry: Registry, tmp_path: Path) -> None:
    from functools import partial

    from conforto._lifecycle.shadow import awaiting_shadow, promote
    from conforto.errors import ShadowPending, exit_code

    url = f"sqlite:///{tmp_path / 'log.db'}"
    registry.store.set_tag("1", "validated", "")
    waiting = partial(promote, registry, log_url=url, min_predictions=30)
    assert awaiting_shadow(registry) is None  # nothing in production: nothing to shadow
    first = waiting("1")  # the first production version has no shadow period
    assert first is not None
    assert first.to == "1"
    assert awaiting_shadow(registry) is None  # version 2 is not validated
    registry.store.set_tag("2", "validated", "")
    assert awaiting_shadow(registry) == "2"  # the challenger a deploy bakes in
    _shadowed(url, "2", range(100, 140), kind="smoke")  # deploys' smoke tests: not its period
    with pytest.raises(ShadowPending, match=r"0 shadowed predictions \(at least 30 needed\)"):
        waiting("2")
    assert exit_code(ShadowPending("")) == 5  # what a workflow tells from any other failure
    _shadowed(url, "2", range(29))
    with pytest.raises(RegistryError, match="29 shadowed predictions"):
        waiting("2")
    assert registry.store.alias_version(PRODUCTION) == "1"  # nothing moved
    assert waiting("1") is None  # production itself: no shadow asked
    forced = waiting("2", force=True)
    assert forced is not None
    assert forced.to == "2"
    registry.rollback()
    _shadowed(url, "2", range(29, 30))
    done = waiting("2")
    assert done is not None
    assert done.reason == "validated"


@pytest.mark.parametrize("journal", ["file"])
def test_the_pipeline_leaves_a_version_for_its_shadow_period(
    registry: Registry, tmp_path: Path
) -> None:
    from types import SimpleNamespace

    from conforto._lifecycle.gate_checks import GateConfig
    from conforto._lifecycle.pipeline import PipelineConfig, _promote, _Stages
    from conforto._tracking.base import NullTracker

    said: list[str] = []
    config = PipelineConfig(gate=GateConfig(shadow_min_predictions=100))
    stages = _Stages(registry, tmp_path, config, NullTracker(), None, said.append, False)
    for version in ("1", "2"):
        registry.store.set_tag(version, "validated", "")
    first = SimpleNamespace(version="1", promoted=None)
    _promote(stages, first)  # type: ignore[arg-type]
    assert first.promoted is not None  # nothing in production: nothing to shadow
    result = SimpleNamespace(version="2", promoted=None)
    _promote(stages, result)  # type: ignore[arg-type]
    assert result.promoted is None
    assert registry.store.alias_version(PRODUCTION) == "1"
    assert said[-1] == (
        "version 2 waits for its shadow period before production: `conforto serve "
        "--challenger 2`, then `conforto model promote 2`"
    )
    stages.config = PipelineConfig()
    _promote(stages, result)  # type: ignore[arg-type]
    assert result.promoted is not None
