"""Where the lifecycle keeps its history and serialises production moves: the journal.

A journal holds the audit log (every move), the intent of the move in flight (so that an
interrupted one can be completed) and the lease that lets one command at a time move
production. :class:`FileJournal` keeps them under ``CONFORTO_HOME/registry`` (the embedded
default: one machine); :class:`conforto._registry.shared_journal.SharedJournal` keeps them in the
registry store, on the MLflow server, so that every machine with the tracking URI continues the
same lifecycle.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from filelock import FileLock, Timeout

from conforto._fileio import atomic_write_json
from conforto._registry.audit import AUDIT, Move, append_move, read_audit
from conforto.errors import RegistryError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from contextlib import AbstractContextManager
    from pathlib import Path

INTENT = "intent.json"
LOCK = ".lock"
LOCK_TIMEOUT_S = 120.0


class Journal(Protocol):
    """What the lifecycle keeps besides the registry store: history, intent, lease."""

    def lease(self) -> AbstractContextManager[None]:
        """Hold the right to move production for the block.

        Raises
        ------
        RegistryError
            When another command holds it (the message names who, and what to do).
        """

    def busy(self) -> str | None:
        """Who is moving production now, from another process (``None``: nobody)."""

    def moves(self) -> list[Move]:
        """Every move recorded, oldest first."""

    def record(self, move: Move) -> None:
        """Append a move to the audit log (under the lease)."""

    def intend(self, move: Move) -> None:
        """Say which move is about to be made (under the lease), before the registry changes."""

    def interrupted(self) -> Move | None:
        """The move a command announced and never recorded (it was killed), if any."""

    def settle(self) -> None:
        """Forget the intent :meth:`interrupted` returned once reconciled, or that of the move
        just made (under the lease).
        """


class FileJournal:
    """The journal in a local folder: ``audit.jsonl`` (append-only, fsynced), ``intent.json``
    and a file lock, ``.lock``, that serialises the moves of every process on this machine.

    Parameters
    ----------
    directory
        The registry folder, ``CONFORTO_HOME/registry``.
    timeout
        How long a move waits for another process's lock [s].
    """

    def __init__(self, directory: Path, timeout: float = LOCK_TIMEOUT_S) -> None:
        self.directory = directory
        self.timeout = timeout
        directory.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def lease(self) -> Iterator[None]:
        """Hold the file lock; raises :class:`RegistryError` past the timeout."""
        with file_lock(self.directory, self.timeout):
            yield

    def busy(self) -> str | None:
        """Nobody, as far as a reconciliation is concerned: it waits for the lock."""
        return None

    def moves(self) -> list[Move]:
        """Every move in ``audit.jsonl``, oldest first."""
        return read_audit(self.directory / AUDIT)

    def record(self, move: Move) -> None:
        """Append a move to ``audit.jsonl``, on disk when this returns."""
        append_move(self.directory / AUDIT, move)

    def intend(self, move: Move) -> None:
        """Write ``intent.json`` atomically."""
        atomic_write_json(self.directory / INTENT, move.to_json())

    def interrupted(self) -> Move | None:
        """The move in ``intent.json`` (a completed move removes it)."""
        path = self.directory / INTENT
        return Move.from_json(json.loads(path.read_text())) if path.is_file() else None

    def settle(self) -> None:
        """Remove ``intent.json``."""
        (self.directory / INTENT).unlink(missing_ok=True)


@contextmanager
def file_lock(directory: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold ``directory/.lock``: this machine's commands never interleave there.

    Raises
    ------
    RegistryError
        When another command holds the lock for longer than ``timeout`` [s].
    """
    lock = FileLock(directory / LOCK, timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise RegistryError(
            f"another command holds {directory / LOCK} for over {timeout:.0f} s; "
            "try again when it has finished."
        ) from None
    try:
        yield
    finally:
        lock.release()
