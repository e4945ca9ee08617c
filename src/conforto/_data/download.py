"""Fetch the official ASHRAE Global Thermal Comfort Database II files, verified.

Downloads write to a temporary file beside the destination, check the sha256 digest and only
then rename; a failed or interrupted transfer leaves nothing behind. Transient failures
(connection errors, timeouts, 5xx/429 answers, truncated bodies) are retried with backoff.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from conforto._fileio import atomic_writer, file_sha256
from conforto.errors import DataSourceError, DownloadError

if TYPE_CHECKING:
    from conforto._settings import Settings

_CHUNK = 1 << 16


@dataclass(frozen=True)
class RemoteFile:
    """A file to fetch: where from, where to, and its expected sha256 digest."""

    name: str
    url: str
    sha256: str
    filename: str


class _TransientError(Exception):
    """A failure worth retrying."""


def official_files(settings: Settings) -> dict[str, RemoteFile]:
    """Return the two official files (measurements, metadata) as configured in ``settings``."""
    dl = settings.download
    return {
        "measurements": RemoteFile(
            "measurements",
            str(dl.measurements_url),
            dl.measurements_sha256,
            Path(str(dl.measurements_url.path)).name,
        ),
        "metadata": RemoteFile(
            "metadata",
            str(dl.metadata_url),
            dl.metadata_sha256,
            Path(str(dl.metadata_url.path)).name,
        ),
    }


def download_file(
    remote: RemoteFile,
    dest: Path,
    *,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
    progress: bool = True,
) -> Path:
    """Download ``remote`` to ``dest`` atomically and verify its checksum.

    Parameters
    ----------
    remote
        What to fetch.
    dest
        Destination file; replaced only by a complete, verified download.
    retries
        How many times to retry after a transient failure.
    timeout
        Seconds to wait for the server on each network operation [s].
    backoff
        First wait between attempts [s]; doubles on each retry.
    progress
        Show a progress bar on the terminal.

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    DownloadError
        When the server refuses the request, the retries are exhausted, or the content's sha256
        does not match (the message names the file and both digests).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(retries + 1):
        try:
            _fetch(remote, dest, timeout=timeout, progress=progress)
            return dest
        except _TransientError as exc:
            if attempt == retries:
                raise DownloadError(
                    f"could not download {remote.name} from {remote.url} after "
                    f"{retries + 1} attempt{'s' if retries else ''}: {exc}. "
                    "Check the network and try again."
                ) from None
            time.sleep(backoff * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _fetch(remote: RemoteFile, dest: Path, *, timeout: float, progress: bool) -> None:
    try:
        digest = hashlib.sha256()
        received = 0
        with (
            atomic_writer(dest) as handle,
            httpx.stream("GET", remote.url, timeout=timeout, follow_redirects=True) as response,
        ):
            if response.status_code >= 500 or response.status_code == 429:
                raise _TransientError(f"server answered HTTP {response.status_code}")
            if response.status_code >= 400:
                raise DownloadError(
                    f"could not download {remote.name}: {remote.url} answered HTTP "
                    f"{response.status_code}. Check the URL (CONFORTO_DOWNLOAD__*_URL)."
                )
            total = int(response.headers.get("content-length", 0)) or None
            with Progress(
                TextColumn(f"[bold]{remote.filename}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                disable=not progress,
                transient=True,
            ) as bar:
                task = bar.add_task("download", total=total)
                for chunk in response.iter_raw(_CHUNK):
                    handle.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(task, advance=len(chunk))
            if total is not None and received != total:
                raise _TransientError(f"transfer interrupted after {received} of {total} bytes")
            if (actual := digest.hexdigest()) != remote.sha256:
                raise DownloadError(
                    f"checksum mismatch for {remote.name} ({remote.url}): expected sha256 "
                    f"{remote.sha256}, got {actual}. The file was not saved; the source may "
                    "have changed or been corrupted in transit."
                )
    except httpx.TransportError as exc:
        raise _TransientError(f"{type(exc).__name__}: {exc}") from None


def download_official(
    settings: Settings,
    *,
    out: Path | None = None,
    names: tuple[str, ...] = ("measurements", "metadata"),
    progress: bool = True,
) -> dict[str, Path]:
    """Download both official files into ``out`` (default: the settings' data cache).

    Files already present with the right checksum are reused, not fetched again.

    Parameters
    ----------
    settings
        Provides the URLs, digests, retries and timeout.
    out
        Destination folder.
    names
        Which of the two files to fetch.
    progress
        Show progress bars.

    Returns
    -------
    dict
        ``{"measurements": path, "metadata": path}``.
    """
    folder = out if out is not None else settings.data_cache
    paths = {}
    for key in names:
        remote = official_files(settings)[key]
        dest = folder / remote.filename
        if not (dest.is_file() and file_sha256(dest) == remote.sha256):
            download_file(
                remote,
                dest,
                retries=settings.download.retries,
                timeout=settings.download.timeout,
                progress=progress,
            )
        paths[key] = dest
    return paths


def resolve_sources(
    settings: Settings,
    measurements: Path | None = None,
    metadata: Path | None = None,
    *,
    progress: bool = True,
) -> tuple[Path, Path]:
    """Decide which data files to use.

    Explicit paths win, then ``CONFORTO_MEASUREMENTS`` / ``CONFORTO_METADATA``; a file still
    unset comes from the official download, cached and reused.

    Parameters
    ----------
    settings
        Project settings.
    measurements, metadata
        Paths given on the command line, if any.
    progress
        Show progress bars when downloading.

    Returns
    -------
    tuple of pathlib.Path
        ``(measurements, metadata)``.

    Raises
    ------
    DataSourceError
        When a download is needed and fails (for example offline), saying how to point at
        local files instead.
    """
    chosen = {
        "measurements": measurements or settings.measurements,
        "metadata": metadata or settings.metadata,
    }
    missing = tuple(k for k, v in chosen.items() if v is None)
    if missing:
        try:
            fetched = download_official(settings, names=missing, progress=progress)
        except DownloadError as exc:
            raise DataSourceError(
                f"no local data files are set, and downloading the official ones failed: {exc} "
                "To use local copies, pass --measurements PATH --metadata PATH or set "
                "CONFORTO_MEASUREMENTS and CONFORTO_METADATA."
            ) from None
        chosen.update(fetched)
    return Path(str(chosen["measurements"])), Path(str(chosen["metadata"]))
