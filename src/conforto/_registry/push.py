"""Move from the embedded registry to a tracking server: ``conforto model push-registry``.

Every version is registered on the server (its artifact uploaded; one already there, by its
checksum, is reused), with its lifecycle tags and its gate report; the audit log is written to
the server's journal with the versions renumbered as the server numbered them, and the
production alias set. Running it again changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from conforto._registry.audit import Move
from conforto._registry.model_registry import PRODUCTION
from conforto.errors import RegistryError

if TYPE_CHECKING:
    from conforto._registry.model_registry import Registry
    from conforto._tracking.model_version import ModelVersion

GATE_REPORT = "gate.report"


class Pushed(NamedTuple):
    """What a push did."""

    #: Server version of each local version.
    versions: dict[str, str]
    #: Moves written to the server's audit log (0 when it already had them).
    moves: int
    #: The server's production version afterwards.
    production: str | None


def push_registry(source: Registry, target: Registry) -> Pushed:
    """Copy ``source`` (embedded) into ``target`` (a tracking server's registry).

    Returns
    -------
    Pushed
        The version numbers' mapping, the moves written and the production version.

    Raises
    ------
    RegistryError
        When the server already has an audit log that is not this one's.
    ArtifactError
        When a local artifact is missing or does not match its checksum.
    """
    numbers = {v.version: _push_version(source, target, v) for v in source.store.versions()}
    moves = [_renumbered(m, numbers) for m in source.audit()]
    written = 0
    with target.journal.lease():
        there = [(m.action, m.to, m.previous, m.time) for m in target.audit()]
        if there != [(m.action, m.to, m.previous, m.time) for m in moves[: len(there)]]:
            raise RegistryError(
                f"the server's registry already has an audit log of its own ({len(there)} "
                "moves): push-registry only fills an empty one, or one it filled before."
            )
        for move in moves[len(there) :]:
            target.journal.record(move)
            written += 1
        current = source.store.alias_version(PRODUCTION)
        if current is not None:
            target.store.set_alias(PRODUCTION, numbers[current])
    return Pushed(numbers, written, numbers.get(current or ""))


def _push_version(source: Registry, target: Registry, version: ModelVersion) -> str:
    """Register one local version on the server with its tags and gate report; its number."""
    artifact = source.verified(version)
    found = target.register(artifact, force=True).version
    for key, value in version.tags.items():
        if key != GATE_REPORT and found.tags.get(key) != value:
            target.store.set_tag(found.version, key, value)
    report = artifact.parent / "gate"  # the embedded store keeps the run's files beside it
    if GATE_REPORT in version.tags and GATE_REPORT not in found.tags and report.is_dir():
        kept = target.store.attach(found, sorted(report.iterdir()), "gate")
        target.store.set_tag(found.version, GATE_REPORT, f"{kept}/gate.html")
    return found.version


def _renumbered(move: Move, numbers: dict[str, str]) -> Move:
    """``move`` with the server's version numbers."""
    previous = numbers.get(move.previous) if move.previous else None
    return Move(
        move.action, numbers[move.to], previous, move.reason, move.command, move.time, move.user
    )
