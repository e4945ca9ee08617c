"""Downloads against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, ClassVar

import pytest

from conforto._data.download import RemoteFile, download_file, download_official, resolve_sources
from conforto._settings import Settings
from conforto.errors import DataSourceError, DownloadError
from tests.processes import in_thread

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PAYLOAD = b"building_id,ta\n" + b"1,22.5\n" * 50_000
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    hits: ClassVar[Counter[str]] = Counter()

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, body: bytes, length: int | None = None, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.hits[self.path] += 1
        if self.path == "/good.csv":
            self._send(PAYLOAD)
        elif self.path == "/corrupt.csv":
            self._send(PAYLOAD[:-10] + b"9,99.9\n\n\n\n")
        elif self.path == "/flaky.csv":
            if self.hits[self.path] <= 2:
                self._send(b"busy", status=503)
            else:
                self._send(PAYLOAD)
        elif self.path == "/down.csv":
            self._send(b"error", status=500)
        elif self.path == "/truncated.csv":
            self._send(PAYLOAD[: len(PAYLOAD) // 2], length=len(PAYLOAD))
            self.close_connection = True
        else:
            self._send(b"not found", status=404)


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.hits = Counter()
    with in_thread(ThreadingHTTPServer(("127.0.0.1", 0), _Handler)) as httpd:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"


def _remote(server: str, name: str, sha: str = SHA) -> RemoteFile:
    return RemoteFile("measurements", f"{server}/{name}", sha, name)


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".")]


def test_good_file_is_saved_and_verified(server: str, tmp_path: Path) -> None:
    dest = download_file(_remote(server, "good.csv"), tmp_path / "m.csv", progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert _leftovers(tmp_path) == []


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty folder of this test's own (its home beside it)."""
    path = tmp_path / "downloads"
    path.mkdir()
    return path


def test_checksum_mismatch_is_refused_and_nothing_saved(server: str, folder: Path) -> None:
    with pytest.raises(DownloadError) as info:
        download_file(_remote(server, "corrupt.csv"), folder / "m.csv", progress=False)
    message = str(info.value)
    assert "checksum mismatch for measurements" in message
    assert SHA in message
    assert hashlib.sha256(PAYLOAD[:-10] + b"9,99.9\n\n\n\n").hexdigest() in message
    assert list(folder.iterdir()) == []


def test_transient_server_errors_are_retried(server: str, tmp_path: Path) -> None:
    dest = download_file(
        _remote(server, "flaky.csv"), tmp_path / "m.csv", backoff=0.01, progress=False
    )
    assert dest.read_bytes() == PAYLOAD
    assert _Handler.hits["/flaky.csv"] == 3


def test_persistent_server_error_gives_up_cleanly(server: str, folder: Path) -> None:
    with pytest.raises(DownloadError, match="after 3 attempts: server answered HTTP 500"):
        download_file(
            _remote(server, "down.csv"), folder / "m.csv", retries=2, backoff=0.01, progress=False
        )
    assert list(folder.iterdir()) == []


def test_interrupted_transfer_leaves_no_partial_file(server: str, folder: Path) -> None:
    dest = folder / "m.csv"
    with pytest.raises(DownloadError, match="attempts"):
        download_file(
            _remote(server, "truncated.csv"), dest, retries=1, backoff=0.01, progress=False
        )
    assert list(folder.iterdir()) == []
    assert _Handler.hits["/truncated.csv"] == 2


def test_client_error_is_not_retried(server: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_file(
            _remote(server, "missing.csv"), tmp_path / "m.csv", backoff=0.01, progress=False
        )
    assert _Handler.hits["/missing.csv"] == 1


def test_an_existing_good_file_survives_a_failed_download(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "m.csv"
    dest.write_bytes(b"previous good copy")
    with pytest.raises(DownloadError):
        download_file(_remote(server, "corrupt.csv"), dest, progress=False)
    assert dest.read_bytes() == b"previous good copy"


def _settings(server: str, tmp_path: Path, name: str = "good.csv") -> Settings:
    return Settings(
        home=tmp_path / "home",
        measurements=None,  # ignore CONFORTO_MEASUREMENTS/METADATA from the environment
        metadata=None,
        download={
            "measurements_url": f"{server}/{name}",
            "measurements_sha256": SHA,
            "metadata_url": f"{server}/good.csv",
            "metadata_sha256": SHA,
            "retries": 0,
        },
    )


def test_official_files_are_cached_and_reused(server: str, tmp_path: Path) -> None:
    settings = _settings(server, tmp_path)
    first = download_official(settings, progress=False)
    assert first["measurements"].parent == settings.data_cache
    assert _Handler.hits["/good.csv"] == 1  # both names point at the same file
    second = download_official(settings, progress=False)
    assert second == first
    assert _Handler.hits["/good.csv"] == 1


def test_resolve_sources_prefers_local_files(server: str, tmp_path: Path) -> None:
    settings = _settings(server, tmp_path)
    local = tmp_path / "local.csv"
    assert resolve_sources(settings, local, local) == (local, local)
    assert _Handler.hits["/good.csv"] == 0


def test_resolve_sources_offline_says_how_to_use_local_files(tmp_path: Path) -> None:
    settings = _settings("http://127.0.0.1:9", tmp_path)  # the discard port: nothing listens
    with pytest.raises(DataSourceError, match="CONFORTO_MEASUREMENTS and CONFORTO_METADATA"):
        resolve_sources(settings, progress=False)
    assert not settings.data_cache.exists() or not any(settings.data_cache.iterdir())
