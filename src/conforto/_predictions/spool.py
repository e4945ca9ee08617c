"""The spool: the prediction log's rows on local disk before the response is sent.

Each service process appends to files of its own in the spool folder, one ``os.write`` per
micro-batch: once the call returns the rows are in the kernel's page cache, so they outlive
the process (a crash, ``kill -9``, an OOM kill), though not the machine's power. A writer
process (:mod:`.drain`) moves them into the database and deletes what it has moved.

Files, for a process ``OWNER`` (its start time in ms, host, pid and a random tag, so names
sort by age and never collide, even across machines sharing one database):

- ``OWNER.owner``: locked (``flock``) by the process while it lives; a lock that can be taken
  means the owner is gone;
- ``OWNER.NNNNNN.seg``: its segments, in order; a new one starts past ``segment_bytes``;
- ``OWNER.drain``: locked by the writer that drains this owner's segments.

A segment is a sequence of frames: a 16-byte header (magic, payload length, CRC-32 of the
payload, rows) and the payload, the rows (:mod:`.records`) as JSON, by table, each table's
fields named once: ``{"predictions": {"fields": ["prediction_id", …], "rows": [[…], …]}, …}``
(rows of one table in the order they were given). Frames of the previous format
(magic ``CSP1``: positional rows marshalled, which only some Python versions read) are still
read; one that cannot be is reported and kept, never deleted. This module imports no
database code.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import marshal
import os
import re
import secrets
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pydantic_core

from conforto._predictions.records import FIELDS, Row, legacy_row, read_row, values
from conforto.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path

log = logging.getLogger(__name__)

HEADER = struct.Struct("<4sIII")
MAGIC = b"CSP2"
#: The previous format's frames: positional rows, marshalled (read, never written).
LEGACY_MAGIC = b"CSP1"
SEGMENT = re.compile(r"^(?P<owner>[\w-]+)\.(?P<seq>\d{6})\.seg$")


def encode(rows: Sequence[Row]) -> bytes:
    """One frame holding ``rows``."""
    tables: dict[type[Row], list[tuple[object, ...]]] = {}
    for row in rows:
        tables.setdefault(type(row), []).append(values(row))
    content = {kind.TABLE: {"fields": FIELDS[kind], "rows": got} for kind, got in tables.items()}
    payload = pydantic_core.to_json(content)
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload), len(rows)) + payload


def decode(magic: bytes, payload: bytes) -> list[Row]:
    """The rows of a frame's payload, of either format.

    Raises
    ------
    ValueError
        When they cannot be read: a newer conforto's rows, or a previous-format frame this
        Python's ``marshal`` does not read.
    """
    if magic == MAGIC:
        try:
            return [
                read_row(table, part["fields"], given)
                for table, part in json.loads(payload).items()
                for given in part["rows"]
            ]
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"rows this conforto does not know ({exc})") from None
    try:
        rows = marshal.loads(payload)  # noqa: S302  # nosec B302 - builds data, runs no code
    except (EOFError, TypeError, ValueError) as exc:
        raise ValueError(
            f"rows of the previous spool format that this Python cannot read ({exc}): drain "
            "them with the conforto and Python that wrote them"
        ) from None
    try:
        return [legacy_row(table, values) for table, values in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"rows of the previous spool format it did not write ({exc})") from None


@dataclass(frozen=True)
class Frame:
    """A frame read back: where it ends in its segment [bytes], how many rows it holds and,
    unless only the headers were read, the rows.
    """

    end: int
    count: int
    rows: list[Row] | None


class TornFrameError(Exception):
    """A frame that is incomplete or does not match its checksum at ``offset``."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"torn or corrupt frame at byte {offset}")
        self.offset = offset


class UnreadableFrameError(Exception):
    """A whole frame at ``offset`` whose rows this conforto cannot read (``reason``)."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"frame at byte {offset} holds {reason}")
        self.offset = offset


def frames(path: Path, start: int = 0, *, rows: bool = True) -> Iterator[Frame]:
    """The frames of a segment from byte ``start`` on.

    Parameters
    ----------
    path
        The segment.
    start
        Where to begin [bytes]: 0 or the end of a frame.
    rows
        Decode the rows; without, only the headers are read (to count rows).

    Raises
    ------
    TornFrameError
        At a frame that is incomplete or fails its checksum: still being written (its owner
        lives), or cut short by the owner's death or a full disk.
    UnreadableFrameError
        At a whole frame whose rows cannot be read (see :func:`decode`).
    """
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size  # frames appended later: the next call's
        offset = start
        while offset < size:
            file.seek(offset)
            header = file.read(HEADER.size)
            if len(header) < HEADER.size:
                raise TornFrameError(offset)
            magic, length, crc, count = HEADER.unpack(header)
            end = offset + HEADER.size + length
            if magic not in (MAGIC, LEGACY_MAGIC) or end > size:
                raise TornFrameError(offset)
            decoded = None
            if rows:
                payload = file.read(length)
                if zlib.crc32(payload) != crc:
                    raise TornFrameError(offset)
                try:
                    decoded = decode(magic, payload)
                except ValueError as exc:
                    raise UnreadableFrameError(offset, str(exc)) from None
            yield Frame(end, count, decoded)
            offset = end


def owner_name() -> str:
    """A new owner's name: start time [ms], host, pid, random tag (sortable by age)."""
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40]
    return f"{int(time.time() * 1000):013d}-{host}-{os.getpid()}-{secrets.token_hex(3)}"


def segments(directory: Path) -> dict[str, list[Path]]:
    """The segments in the spool folder, by owner (oldest owner first), each in order."""
    found: dict[str, list[Path]] = {}
    for path in sorted(directory.glob("*.seg")):
        match = SEGMENT.match(path.name)
        if match:
            found.setdefault(match["owner"], []).append(path)
    return found


def try_lock(path: Path) -> int | None:
    """An open descriptor of ``path`` holding its exclusive ``flock``, or ``None`` when another
    open file holds it. Closing the descriptor (or the process's death) releases it.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def segment_size(max_bytes: int) -> int:
    """The size past which an owner starts a new segment [bytes]: a sixteenth of the spool's
    bound, between 4 KiB and 64 MiB, so old segments can be dropped one by one.
    """
    return max(4096, min(64 << 20, max_bytes // 16))


class Spool:
    """The service process's side: append frames to its own segments.

    Parameters
    ----------
    directory
        The spool folder (created).
    max_bytes
        The spool's bound [bytes]; sets the segment size (see :func:`segment_size`).
    dropped
        Called with the number of rows that could not be spooled (disk full).
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = 1 << 30,
        dropped: Callable[[int], None] = lambda _rows: None,
    ) -> None:
        self.directory = directory
        self.segment_bytes = segment_size(max_bytes)
        self.dropped = dropped
        self.owner = owner_name()  # fresh: nobody else holds its lock
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(
                directory / f"{self.owner}.owner", os.O_RDWR | os.O_CREAT, 0o600
            )
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)  # a fresh name: never waits
            self._fd = self._open(0)
        except OSError as exc:
            raise ConfigError(
                f"the prediction log's spool {directory} cannot be written ({exc.strerror}): "
                "set CONFORTO_SERVE__SPOOL_DIR to a writable local folder"
            ) from None
        self._seq = 0
        self._size = 0
        self._last_warning = 0.0
        self._writing = threading.Lock()

    def _open(self, seq: int) -> int:
        path = self.directory / f"{self.owner}.{seq:06d}.seg"
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def append(self, rows: Sequence[Row]) -> bool:
        """Write ``rows`` as one frame with one ``os.write``; False when the disk refused
        them (they are counted as dropped and logged; nothing half-written stays).
        """
        frame = encode(rows)
        with self._writing:  # the batcher's, a shadow's, a canary's and the routes' threads
            try:
                written = os.write(self._fd, frame)
                if written < len(frame):  # a full disk may take part of it
                    raise OSError(errno.ENOSPC, "short write")
            except OSError as exc:
                self._refused(exc, len(rows))
                return False
            self._size += written
            if self._size >= self.segment_bytes:
                self._rotate()
        return True

    def _refused(self, exc: OSError, rows: int) -> None:
        _truncate(self._fd, self._size)
        self.dropped(rows)
        now = time.monotonic()
        if now - self._last_warning > 10:
            self._last_warning = now
            log.error(
                "prediction log: the spool %s refused %d rows (%s): free disk space or move "
                "CONFORTO_SERVE__SPOOL_DIR; predictions are answered but not logged meanwhile",
                self.directory,
                rows,
                exc.strerror or exc,
            )

    def _rotate(self) -> None:
        try:
            fd = self._open(self._seq + 1)
        except OSError:
            return  # no new file now: keep appending here, try again at the next frame
        os.close(self._fd)
        self._fd, self._seq, self._size = fd, self._seq + 1, 0

    def close(self) -> None:
        """Close the segment and let go of the owner's lock (a writer may then finish it)."""
        os.close(self._fd)
        os.close(self._lock_fd)


def _truncate(fd: int, size: int) -> None:
    """Cut a segment back to ``size`` bytes after a failed write (best effort)."""
    try:
        os.ftruncate(fd, size)
    except OSError as exc:
        log.warning("prediction log: could not cut a torn frame from the spool: %s", exc)
