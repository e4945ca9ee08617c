"""Moving the spool into the database: exactly once, whoever wrote it and however it ended.

A :class:`Drainer` claims the owners it is responsible for (its own service process's, and
every owner that is gone: a lock it can take), reads their segments from the stored position
on, and stores the rows together with the position they end at, in one transaction: a crash
at any point leaves either both or neither, so after a restart nothing is stored twice and
nothing is skipped. Segments read to the end are deleted once their owner has moved on to a
newer one or is gone. Past ``max_bytes`` on disk (the database down for long), the oldest
segments it claims are deleted unread and their rows counted as dropped.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from conforto._predictions.records import PredictionRow, VoteRow
from conforto._predictions.spool import (
    TornFrameError,
    UnreadableFrameError,
    frames,
    segments,
    try_lock,
)
from conforto.errors import LogUnavailable

if TYPE_CHECKING:
    from pathlib import Path

    from conforto._predictions.records import Row
    from conforto._predictions.store import LogDatabase

log = logging.getLogger(__name__)


@dataclass
class DrainStatus:
    """What a drainer has done since it started (reported to the service's ``/metrics``)."""

    predictions: int = 0
    feedback: int = 0
    failures: int = 0
    dropped: int = 0
    orphaned: int = 0
    backlog_bytes: int = 0
    last_error: str = ""


@dataclass
class _Claim:
    """An owner this drainer holds: its drain lock and its segments' known positions."""

    lock_fd: int
    positions: dict[str, int] = field(default_factory=dict)


class Drainer:
    """Store the spool's rows in the database.

    Parameters
    ----------
    directory
        The spool folder.
    database
        Where the rows go.
    owner
        The owner whose service process this drainer serves (``None``: only owners that
        are gone, as at a service's start or in tests).
    max_bytes
        Most bytes of segments on disk before the oldest are dropped [bytes].
    horizon
        How long a vote may wait for its prediction before it is orphaned [s].
    batch_rows
        Most rows stored per transaction [rows].
    """

    def __init__(
        self,
        directory: Path,
        database: LogDatabase,
        *,
        owner: str | None = None,
        max_bytes: int = 1 << 30,
        horizon: float = 600.0,
        batch_rows: int = 2000,
    ) -> None:
        self.directory = directory
        self.database = database
        self.owner = owner
        self.max_bytes = max_bytes
        self.horizon = horizon
        self.batch_rows = batch_rows
        self.status = DrainStatus()
        self._claims: dict[str, _Claim] = {}
        self._settled = 0.0
        #: Segments kept on disk, never deleted nor dropped: they hold a frame this conforto
        #: cannot read (name → why).
        self.kept: dict[str, str] = {}

    # ------------------------------------------------------------------------------- ownership

    def _alive(self, owner: str) -> bool:
        """Whether ``owner``'s service process still holds its lock."""
        lock = self.directory / f"{owner}.owner"
        if not lock.exists():
            return False
        fd = try_lock(lock)
        if fd is None:
            return True
        os.close(fd)
        return False

    def _claim(self, owner: str) -> _Claim | None:
        if owner in self._claims:
            return self._claims[owner]
        if owner != self.owner and self._alive(owner):
            return None  # a live service's own drainer does its segments
        fd = try_lock(self.directory / f"{owner}.drain")
        if fd is None:
            return None  # another drainer has it
        self._claims[owner] = _Claim(fd)
        return self._claims[owner]

    def _release(self, owner: str) -> None:
        """Forget a finished owner: its files, then its lock."""
        claim = self._claims.pop(owner)
        for suffix in (".owner", ".drain"):
            (self.directory / f"{owner}{suffix}").unlink(missing_ok=True)
        os.close(claim.lock_fd)

    def close(self) -> None:
        """Let go of every claim (the files stay for whoever drains next)."""
        for claim in self._claims.values():
            os.close(claim.lock_fd)
        self._claims.clear()

    # ---------------------------------------------------------------------------------- draining

    def step(self) -> int:
        """One pass over the spool: store what can be stored, delete what is done, drop past
        the bound, settle old pending votes.

        Returns
        -------
        int
            Rows stored in this pass (0: nothing to do, or the database is down).
        """
        stored = 0
        found = segments(self.directory)
        owners = {p.name.removesuffix(".owner") for p in self.directory.glob("*.owner")}
        for owner in sorted({*found, *self._claims, *owners}):
            claim = self._claim(owner)
            if claim is None:
                continue
            try:
                stored += self._drain_owner(owner, claim, found.get(owner, []))
            except LogUnavailable as exc:
                self._failed(exc)
                break
        self._bound(found)
        self._settle()
        return stored

    def _drain_owner(self, owner: str, claim: _Claim, paths: list[Path]) -> int:
        stored = 0
        alive = owner == self.owner and self._alive(owner)
        missing = [p.name for p in paths if p.name not in claim.positions]
        if missing:
            claim.positions.update(dict.fromkeys(missing, 0) | self.database.positions(missing))
        for i, path in enumerate(paths):
            sealed = i < len(paths) - 1 or not alive
            stored += self._drain_segment(path, claim, sealed)
            if stored >= self.batch_rows:
                return stored  # more next pass: let calls through between transactions
        if not alive and not segments(self.directory).get(owner):
            self._release(owner)
        return stored

    def _drain_segment(self, path: Path, claim: _Claim, sealed: bool) -> int:
        start = claim.positions[path.name]
        rows: list[Row] = []
        end = start
        try:
            for frame in frames(path, start):
                rows.extend(frame.rows or [])
                end = frame.end
                if len(rows) >= self.batch_rows:
                    break
        except TornFrameError as exc:
            if sealed:  # its owner will write no more: the rest is lost, say so once
                log.error("prediction log: %s: %s; the rest of the segment is skipped", path, exc)
                end = path.stat().st_size
        except UnreadableFrameError as exc:
            self._unreadable(path, exc)
        if end > start:
            self.database.write(rows, (path.name, end))
            claim.positions[path.name] = end
            self.status.predictions += sum(isinstance(r, PredictionRow) for r in rows)
            self.status.feedback += sum(isinstance(r, VoteRow) for r in rows)
        if sealed and end >= path.stat().st_size and path.name not in self.kept:
            self._delete(path, claim)
        return len(rows)

    def _unreadable(self, path: Path, exc: UnreadableFrameError) -> None:
        """Keep a segment whose rows cannot be read from where they start; say so once."""
        if path.name not in self.kept:
            self.kept[path.name] = str(exc)
            log.error(
                "prediction log: %s: %s; the segment is kept as it is (rows before that frame "
                "are stored)",
                path,
                exc,
            )

    def _delete(self, path: Path, claim: _Claim) -> None:
        path.unlink(missing_ok=True)
        claim.positions.pop(path.name, None)
        try:
            self.database.forget(path.name)
        except LogUnavailable as exc:  # a stale position row is harmless
            log.warning("prediction log: position of %s not forgotten: %s", path.name, exc)

    def _failed(self, exc: LogUnavailable) -> None:
        self.status.failures += 1
        self.status.last_error = str(exc)
        log.warning("prediction log: rows wait in the spool: %s", exc)

    # ------------------------------------------------------------------------------- the bound

    def _bound(self, found: dict[str, list[Path]]) -> None:
        """Drop the oldest claimed, sealed segments while the spool is over ``max_bytes``."""
        sizes = {p: _size(p) for paths in found.values() for p in paths}
        total = sum(sizes.values())
        self.status.backlog_bytes = sum(
            max(0, sizes.get(p, 0) - claim.positions.get(p.name, 0))
            for owner, claim in self._claims.items()
            for p in found.get(owner, [])
        )
        if total <= self.max_bytes:
            return
        for owner, paths in found.items():
            claim = self._claims.get(owner)
            if claim is None:
                continue
            droppable = paths[:-1] if owner == self.owner and self._alive(owner) else paths
            droppable = [p for p in droppable if p.name not in self.kept]
            for path in droppable:
                if total <= self.max_bytes:
                    return
                lost = _rows_after(path, claim.positions.get(path.name, 0))
                self.status.dropped += lost
                total -= sizes[path]
                log.error(
                    "prediction log: the spool is over %d bytes: %s dropped with %d rows "
                    "(the database has been down for long; raise CONFORTO_SERVE__SPOOL_MAX_BYTES "
                    "to keep more)",
                    self.max_bytes,
                    path.name,
                    lost,
                )
                self._delete(path, claim)

    def _settle(self) -> None:
        """Match the pending votes whose prediction landed, orphan those past the horizon (every
        5 s at most).
        """
        if time.monotonic() - self._settled < 5.0:
            return
        try:
            self.status.orphaned += self.database.settle(self.horizon)
            self._settled = time.monotonic()
        except LogUnavailable:
            pass  # the drain step reported the outage

    def drain(self, timeout: float) -> bool:
        """Step until the claimed segments are stored, or for ``timeout`` s.

        Returns
        -------
        bool
            Whether everything claimed was stored.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            failures = self.status.failures
            if self.step() == 0 and self.status.failures == failures:
                return self.status.backlog_bytes == 0
            if self.status.failures > failures:
                time.sleep(0.5)
        return False


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _rows_after(path: Path, start: int) -> int:
    """Rows in a segment's frames from byte ``start`` on (headers only)."""
    count = 0
    try:
        for frame in frames(path, start, rows=False):
            count += frame.count
    except (TornFrameError, FileNotFoundError):
        pass
    return count
