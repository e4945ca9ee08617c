"""What restarts a dead log writer keeps running whatever fails."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from conforto._predictions import writer as writer_module
from conforto._predictions.drain import DrainStatus
from conforto._predictions.log import LogCounters, PredictionLog
from conforto._predictions.spool import Spool
from conforto._predictions.writer import LogProcess
from conforto.errors import LogUnavailable

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path


class FlakyStore:
    """A writer whose first status read fails in an unexpected way; later ones work."""

    def __init__(self) -> None:
        self.calls = 0

    def has_prediction(self, prediction_id: str) -> bool:
        return False

    def status(self) -> DrainStatus:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("something unforeseen")
        return DrainStatus(predictions=3)

    def close(self, timeout: float) -> bool:
        return True


def test_the_status_reader_outlives_an_unexpected_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    written: list[tuple[str, int]] = []
    counters = LogCounters(written=lambda table, rows: written.append((table, rows)))
    store = FlakyStore()
    log = PredictionLog(Spool(tmp_path / "spool"), store, interval=0.01, counters=counters)
    log.start()
    deadline = time.monotonic() + 10
    while not written and time.monotonic() < deadline:
        time.sleep(0.01)
    log.close()
    assert written[0] == ("predictions", 3)  # read after the failure
    assert "reading the writer's status failed" in caplog.text


def test_a_writer_that_cannot_be_started_is_unavailable_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_slots(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(writer_module.subprocess, "Popen", no_slots)  # type: ignore[attr-defined]
    writer = LogProcess(f"sqlite:///{tmp_path / 'log.db'}", tmp_path / "spool", "me")
    with pytest.raises(LogUnavailable, match="cannot start the log writer process"):
        writer.status()
    assert writer.pid is None
