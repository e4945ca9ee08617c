from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest

from conforto._lifecycle.stages import data_stage
from conforto._tracking import (
    NullTracker,
    Trackers,
    make_tracker,
    replay_outbox,
    tracked_run,
)
from conforto.errors import AccessRefused
from tests.processes import in_thread

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path


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


def test_trackers_forward_every_call_in_order(tmp_path: Path) -> None:
    inner = RecordingTracker()
    guarded = Trackers({"inner": inner}, tmp_path / "outbox.jsonl")
    guarded.start_run("stage", {"stage": "data"})
    guarded.log_params({"seed": 42})
    guarded.log_metrics({"rows": 60.0})
    guarded.set_tags({"validation": "passed"})
    guarded.log_artifact(tmp_path / "report.html")
    guarded.end_run()
    assert inner.calls == [
        ("start_run", "stage"),
        ("log_params", {"seed": 42}),
        ("log_metrics", {"rows": 60.0}),
        ("set_tags", {"validation": "passed"}),
        ("log_artifact", tmp_path / "report.html"),
        ("end_run", "FINISHED"),
    ]
    assert guarded.failures == []
    assert not (tmp_path / "outbox.jsonl").exists()


class BuggyTracker(RecordingTracker):
    """A tracker with a bug: replaying its calls later would fail the same way."""

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        raise TypeError("float() argument must be a string or a real number, not 'dict'")


def test_programming_errors_are_not_swallowed_into_the_outbox(tmp_path: Path) -> None:
    guarded = Trackers({"buggy": BuggyTracker()}, tmp_path / "outbox.jsonl")
    guarded.start_run("stage")
    with pytest.raises(TypeError, match="float"):
        guarded.log_metrics({"rows": 60.0})
    assert not (tmp_path / "outbox.jsonl").exists()


class RefusedTracker(RecordingTracker):
    """A tracker whose server refuses the credentials sent."""

    def start_run(self, name: str, tags: Mapping[str, str] | None = None) -> None:
        raise AccessRefused("the tracking server at http://mlflow asks who you are")


def test_a_refusal_of_credentials_stops_the_stage_and_keeps_nothing(tmp_path: Path) -> None:
    guarded = Trackers({"mlflow": RefusedTracker()}, tmp_path / "outbox.jsonl")
    with pytest.raises(AccessRefused, match="asks who you are"):
        guarded.start_run("stage")
    assert guarded.failures == []
    assert not (tmp_path / "outbox.jsonl").exists()


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


def test_one_backend_down_leaves_the_other_and_replays_to_it_alone(
    data_files: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    healthy, down = RecordingTracker(), RecordingTracker(broken=("log_params",))
    outbox = tmp_path / "outbox.jsonl"
    with caplog.at_level(logging.WARNING):
        result = data_stage(
            *data_files,
            tmp_path / "out",
            tracker=Trackers({"mlflow": healthy, "clearml": down}),
            outbox=outbox,
        )
    assert result.validation.ok
    assert [m for m, _ in healthy.calls][-1] == "end_run"  # the healthy backend got everything
    assert [m for m, _ in down.calls] == ["start_run"]  # the other stopped at its failure
    assert result.tracking_failures[0][1].startswith("clearml: ConnectionError")

    replayed, other = RecordingTracker(), RecordingTracker()
    sent = replay_outbox(Trackers({"clearml": replayed, "mlflow": other}), outbox)
    assert sent == len(replayed.calls) - 2  # every kept call but the new run's start and end
    assert [m for m, _ in replayed.calls][:2] == ["start_run", "log_params"]
    assert other.calls == []  # nothing of mlflow's was kept: nothing replayed there
    assert not outbox.exists()


def test_outbox_keeps_calls_of_a_backend_not_configured(
    data_files: tuple[Path, Path], tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.jsonl"
    down = RecordingTracker(broken=("start_run",))
    data_stage(*data_files, tmp_path / "out", tracker=Trackers({"clearml": down}), outbox=outbox)
    assert replay_outbox(Trackers({"mlflow": RecordingTracker()}), outbox) == 0
    assert outbox.is_file()  # kept for when clearml is configured again


def test_make_tracker_follows_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from conforto._settings import Settings
    from conforto._tracking.clearml import ClearmlTracker
    from conforto._tracking.mlflow import MlflowTracker

    assert isinstance(make_tracker(Settings(), []), NullTracker)
    assert isinstance(make_tracker(Settings(), ["mlflow"]), MlflowTracker)
    monkeypatch.setenv("CLEARML_OFFLINE_MODE", "1")
    both = make_tracker(Settings(), ["mlflow", "clearml"])
    assert isinstance(both, Trackers)
    clearml = both.members["clearml"]
    assert isinstance(clearml, ClearmlTracker)
    assert clearml.offline
    monkeypatch.setenv("CONFORTO_TRACKING__BACKENDS", '["clearml"]')
    assert isinstance(make_tracker(Settings()), ClearmlTracker)


def test_server_reachable_only_when_something_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    import http.server

    from conforto._tracking.clearml import server_reachable

    monkeypatch.delenv("CLEARML_API_HOST", raising=False)
    assert not server_reachable()
    handler = http.server.BaseHTTPRequestHandler
    with in_thread(http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)) as server:
        monkeypatch.setenv("CLEARML_API_HOST", f"http://127.0.0.1:{server.server_address[1]}")
        assert server_reachable()  # it answers (with an error): a server is there
    assert not server_reachable(timeout=0.5)
