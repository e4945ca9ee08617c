"""The shared journal's lease between two machines (two registries, two folders, one store):
a move in progress is left alone, a lost race changes nothing, an expired lease is taken over
and its move completed or abandoned by what the alias says."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from conforto._registry.audit import Move
from conforto._registry.model_registry import PRODUCTION, Registry
from conforto._registry.shared_journal import SharedJournal
from conforto._registry.store import MemoryStore
from conforto.errors import RegistryBusy, RegistryError, exit_code

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def machines(tmp_path: Path, tiny_models: tuple[Path, Path]) -> tuple[Registry, Registry]:
    """Two machines on one store: both versions registered, version 1 in production."""
    store = MemoryStore()
    one, other = (
        Registry(store, tmp_path / name, SharedJournal(store, lease_s=60.0))
        for name in ("one", "other")
    )
    for model in tiny_models:
        one.register(model)
    one.promote("1", force=True)
    return one, other


def _crashed_mid_move(registry: Registry, to: str, *, alias_moved: bool) -> object:
    """Take the lease, announce a promotion and (maybe) move the alias, then die: the record
    stays open and its lease runs out. The lease is returned, never left (the process is
    gone)."""
    journal = registry.journal
    assert isinstance(journal, SharedJournal)
    lease = journal.lease()
    lease.__enter__()
    journal.intend(Move("promote", to, "1", "killed", "test"))
    if alias_moved:
        registry.store.set_alias(PRODUCTION, to)
    assert journal._held is not None
    registry.store.set_record_tag(journal._held, "expires", "0")
    return lease


def test_a_move_in_progress_elsewhere_is_left_alone_and_named(
    machines: tuple[Registry, Registry],
) -> None:
    one, other = machines
    journal = one.journal
    with journal.lease():
        journal.intend(Move("promote", "2", "1", "better", "test"))
        one.store.set_alias(PRODUCTION, "2")  # one is half-way
        assert other.reconcile() == []  # nothing repaired behind its back
        with pytest.raises(RegistryBusy, match=r"moving production: .*promote version 2") as busy:
            other.rollback()
        assert exit_code(busy.value) == 4  # scripts may run it again
        assert other.journal.busy() is not None
        journal.record(Move("promote", "2", "1", "better", "test"))
    assert other.journal.busy() is None
    assert other.history() == ["1", "2"]


def test_the_loser_of_a_race_for_the_same_lease_changes_nothing(
    machines: tuple[Registry, Registry],
) -> None:
    _one, other = machines
    store = other.store
    assert isinstance(store, MemoryStore)
    won = store.create_record

    def beaten(name: str, tags: dict[str, str]) -> bool:
        """One machine creates the record between the other's read and its create."""
        won(name, {**tags, "owner": "one@runner-a", "state": "closed"})
        return won(name, tags)

    store.create_record = beaten  # type: ignore[method-assign]
    with pytest.raises(RegistryBusy, match=r"at the same moment .*one@runner-a"):
        other.promote("2", force=True)
    assert store.alias_version(PRODUCTION) == "1"
    assert other.history() == ["1"]
    store.set_alias(PRODUCTION, "2")  # moved outside the lifecycle: the audit must catch up
    assert other.reconcile() == []  # but someone took the lease: left to them, no error
    store.create_record = won  # type: ignore[method-assign]
    assert other.reconcile() == [
        "audit log: recorded reconcile to version 2",
        "tags: version 1 archived",
        "tags: version 2 marked production",
        "pointer: now version 2",
    ]


@pytest.mark.parametrize("alias_moved", [True, False])
def test_an_expired_lease_is_taken_over_and_its_move_settled(
    machines: tuple[Registry, Registry], alias_moved: bool
) -> None:
    one, other = machines
    lease = _crashed_mid_move(one, "2", alias_moved=alias_moved)
    repaired = other.reconcile()
    expected = "2" if alias_moved else "1"
    assert other.store.alias_version(PRODUCTION) == expected
    assert other.history()[-1] == expected
    if alias_moved:
        assert other.audit()[-1].reason == "killed (completed after an interruption)"
        assert [v.version for v in other.store.versions() if PRODUCTION in v.tags] == ["2"]
    else:
        assert any("stopped before production moved" in line for line in repaired)
    assert other.journal.interrupted() is None
    assert other.reconcile() == []
    assert one.history() == other.history()  # one history, whichever machine reads it
    del lease


def test_a_lease_that_expires_before_the_move_stops_it(
    machines: tuple[Registry, Registry],
) -> None:
    _one, other = machines
    journal = other.journal
    assert isinstance(journal, SharedJournal)
    journal.lease_s = 0.0
    with pytest.raises(RegistryError, match="expired before this command finished"):
        other.promote("2", force=True)
    assert other.store.alias_version(PRODUCTION) == "1"


def test_every_move_is_kept_in_order_across_records(machines: tuple[Registry, Registry]) -> None:
    one, other = machines
    other.promote("2", force=True)
    one.rollback(reason="worse")
    other.promote("2", force=True)
    assert [(m.action, m.to) for m in one.audit()] == [
        ("promote", "1"),
        ("promote", "2"),
        ("rollback", "1"),
        ("promote", "2"),
    ]
    records = one.store.records(f"{one.store.model_name}.moves.")
    assert len(records) == 4
    assert {tags["state"] for tags in records.values()} == {"closed"}
    first = json.loads(records[min(records)]["move.1"])
    assert (first["action"], first["to"], first["from"]) == ("promote", "1", None)
