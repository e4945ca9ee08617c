from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from conforto.pipeline import data_stage
from conforto.tracking import GuardedTracker, NullTracker, Tracker, tracked_run


class RecordingTracker(NullTracker):
    """Records calls; raises on the methods listed in ``broken``."""

    def __init__(self, broken: tuple[str, ...] = ()) -> None:
        self.broken = broken
        self.calls: list[tuple[str, Any]] = []

    def _record(self, method: str, value: Any) -> None:
        if method in self.broken:
            raise ConnectionError("tracking server unreachable")
        self.calls.append((method, value))

    def start_run(self, name: str, tags: Mapping[str, str] | None = None) -> None:
        self._record("start_run", name)

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._record("log_params", dict(params))

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        self._record("log_metrics", dict(metrics))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._record("set_tags", dict(tags))

    def log_artifact(self, path: Path) -> None:
        self._record("log_artifact", path)

    def end_run(self, status: str = "FINISHED") -> None:
        self._record("end_run", status)


def test_null_tracker_satisfies_protocol() -> None:
    assert isinstance(NullTracker(), Tracker)
    assert isinstance(GuardedTracker(NullTracker()), Tracker)


def test_tracked_run_marks_failed_runs() -> None:
    inner = RecordingTracker()
    with pytest.raises(RuntimeError), tracked_run(inner, "stage"):
        raise RuntimeError("boom")
    assert inner.calls[-1] == ("end_run", "FAILED")


def test_data_stage_records_results(data_files: tuple[Path, Path], tmp_path: Path) -> None:
    inner = RecordingTracker()
    result = data_stage(*data_files, tmp_path / "out", tracker=inner)
    methods = [m for m, _ in inner.calls]
    assert methods[0] == "start_run"
    assert methods[-1] == "end_run"
    metrics = {k: v for m, d in inner.calls if m == "log_metrics" for k, v in d.items()}
    assert metrics["rows"] == 60
    assert metrics["checks_failed"] == 0
    assert result.validation.ok
    assert result.tracking_failures == []


def test_data_stage_finishes_when_tracker_is_down(
    data_files: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = RecordingTracker(
        broken=("start_run", "log_params", "log_metrics", "set_tags", "log_artifact", "end_run")
    )
    with caplog.at_level(logging.WARNING):
        result = data_stage(*data_files, tmp_path / "out", tracker=broken)
    assert result.validation.ok
    assert {p.name for p in result.reports.values()} == {
        "validation.json",
        "validation.html",
        "profile.json",
        "profile.html",
    }
    assert all(p.stat().st_size > 0 for p in result.reports.values())
    assert len(result.tracking_failures) == 1  # then the tracker is left alone
    assert "tracking server unreachable" in caplog.text
