"""Atomic file writes: a reader never sees a half-written file."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Iterator


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's content, read in chunks (memory stays flat)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@contextmanager
def atomic_writer(path: Path, mode: Literal["w", "wb"] = "wb") -> Iterator[IO[Any]]:
    """A file handle whose content appears at ``path`` whole, or not at all.

    The handle writes a temporary file beside ``path``; when the block ends normally, the file
    is flushed to disk, made readable by everyone (``0644``, as ``open`` would with the usual
    umask) and renamed over ``path``. When the block raises, the temporary file is removed and
    ``path`` is left as it was.

    Parameters
    ----------
    path
        Destination; its parent folder is created when missing.
    mode
        ``"wb"`` for bytes, ``"w"`` for UTF-8 text.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_writer(target, "w") as handle:
    ...     _ = handle.write("whole")
    >>> target.read_text(), oct(target.stat().st_mode & 0o777)
    ('whole', '0o644')
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(0o644)  # mkstemp's 0600 would hide reports, predictions and models
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    with atomic_writer(path) as handle:
        handle.write(data)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically; NaN becomes ``null``."""
    return atomic_write_text(path, json.dumps(_finite(obj), indent=2, ensure_ascii=False) + "\n")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item"):  # numpy scalars
        return _finite(obj.item())
    return obj
