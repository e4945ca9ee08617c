"""A due retraining starts once per cooldown and not while a training run is under way: the
rule over the tracking server's runs (read by the integration tests from a real store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conforto._monitor.check import Decision, held_by
from conforto._tracking import TrackedRun

NOW = datetime(2026, 12, 7, 12, 17, tzinfo=UTC)


def run(name: str, status: str, hours_ago: float, **tags: str) -> TrackedRun:
    return TrackedRun(name, status, NOW - timedelta(hours=hours_ago), tags)


def test_nothing_recorded_holds_nothing() -> None:
    assert held_by([], 24) is None


def test_a_check_that_started_training_holds_until_the_cooldown_ends() -> None:
    started = run("monitor_check", "FINISHED", 2, stage="monitor", training="started")
    held = held_by([started], 24)
    assert held is not None
    assert "the check of 2026-12-07 10:17 UTC started training" in held
    assert "from 2026-12-08 10:17 UTC (cooldown 24 h)" in held


@pytest.mark.parametrize("training", ["held", "not due"])
def test_checks_that_started_nothing_hold_nothing(training: str) -> None:
    assert held_by([run("monitor_check", "FINISHED", 1, training=training)], 24) is None


@pytest.mark.parametrize("stage", ["data", "train", "gate", "promote"])
def test_a_training_stage_still_running_holds(stage: str) -> None:
    held = held_by([run("model_training", "RUNNING", 3, stage=stage)], 24)
    assert held == "a training run is under way (model_training, since 09:17 UTC)"


@pytest.mark.parametrize(
    ("status", "stage"),
    [("FINISHED", "train"), ("FAILED", "train"), ("KILLED", "gate"), ("RUNNING", "monitor")],
)
def test_finished_training_and_other_running_work_hold_nothing(status: str, stage: str) -> None:
    assert held_by([run("some_run", status, 1, stage=stage)], 24) is None


def test_the_newest_reason_is_the_one_given() -> None:
    runs = [  # newest first, as the tracking server answers
        run("model_training", "RUNNING", 0.5, stage="train"),
        run("monitor_check", "FINISHED", 5, training="started"),
    ]
    assert "under way" in (held_by(runs, 24) or "")


def test_a_decision_says_what_it_did_about_training() -> None:
    due = Decision("3", True, ["drift on ta"], 0)
    assert (due.start_training, due.training) == (True, "started")
    due.held = "a training run is under way"
    assert (due.start_training, due.training) == (False, "held")
    assert due.to_json()["held"] == "a training run is under way"
    quiet = Decision("3", False, [], 0)
    assert (quiet.start_training, quiet.training) == (False, "not due")
