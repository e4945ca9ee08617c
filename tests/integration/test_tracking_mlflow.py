"""The MLflow tracker on a real SQLite store, and a tracker whose server is gone."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest
from mlflow import MlflowClient

from conforto._lifecycle.stages import data_stage
from conforto._tracking import replay_outbox
from conforto._tracking.mlflow import MlflowTracker
from tests.cli import conforto_cli

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def test_data_stage_is_recorded_in_mlflow(home: Path, data_files: tuple[Path, Path]) -> None:
    uri = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    tracker = MlflowTracker(uri, "tests", artifact_location=(home / "art").as_uri())
    data_stage(*data_files, home / "reports", tracker=tracker)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tests")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_name == "data_validation"
    assert run.info.status == "FINISHED"
    assert run.data.metrics["rows"] == 60
    assert run.data.tags["validation"] == "passed"
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {
        "validation.json",
        "profile.html",
    }


def test_unreachable_server_warns_keeps_calls_and_replays(
    home: Path,
    data_files: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail fast, not after minutes
    gone = MlflowTracker("http://127.0.0.1:9", "tests")  # the discard port: nothing listens
    outbox = home / "tracking" / "outbox.jsonl"
    with caplog.at_level(logging.WARNING):
        result = data_stage(*data_files, home / "reports", tracker=gone, outbox=outbox)
    assert result.validation.ok
    assert (home / "reports" / "profile.json").is_file()
    assert "tracking:" in caplog.text
    assert outbox.is_file()

    uri = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    sent = replay_outbox(MlflowTracker(uri, "replayed", (home / "art").as_uri()), outbox)
    assert sent >= 3
    assert not outbox.exists()
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("replayed")
    assert experiment is not None
    run = client.search_runs([experiment.experiment_id])[0]
    assert run.data.metrics["rows"] == 60
    assert run.data.tags["conforto.replayed"] == "true"


def test_stage_commands_record_their_runs(home: Path, data_files: tuple[Path, Path]) -> None:
    """The workflows call the stage commands, not the pipeline: each records its own run."""
    uri = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    env = {"CONFORTO_TRACKING__URI": uri, "CONFORTO_TRACKING__BACKENDS": '["mlflow"]'}
    m, d = (str(p) for p in data_files)
    out = str(home / "reports")
    validated = conforto_cli(
        "data", "validate", "--measurements", m, "--metadata", d, "--out", out, env=env
    )
    assert validated.returncode == 0, validated.stderr
    image = "127.0.0.1:5000/conforto/conforto@sha256:" + "ab" * 32
    built = conforto_cli(
        "tracking",
        "build",
        "--image",
        image,
        "--commit",
        "c0ffee" * 6,
        "--run-url",
        "https://github.com/o/r/actions/runs/1",
        env=env,
    )
    assert built.returncode == 0, built.stderr
    assert "model version none" in built.stdout  # nothing in production yet

    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = {r.info.run_name: r for r in client.search_runs(ids)}
    assert set(runs) == {"data_validation", "image_build"}
    assert runs["data_validation"].data.tags["validation"] == "passed"
    assert runs["data_validation"].data.metrics["rows"] == 60
    assert runs["image_build"].data.params["image"] == image
    assert runs["image_build"].data.tags["model_version"] == "none"
    assert all(r.info.status == "FINISHED" for r in runs.values())


def test_a_name_mlflow_would_refuse_is_recorded_and_the_run_ends(home: Path) -> None:
    """A gate check named with a comma once made MLflow refuse the batch: the tracker went
    'down' for the rest of the run, which stayed RUNNING on the server (and held retraining)."""
    uri = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    tracker = MlflowTracker(uri, "names", artifact_location=(home / "art").as_uri())
    tracker.start_run("model_validation")
    tracker.log_metrics({"site_adaptation,_20-39_earlier_votes": 0.5})
    tracker.log_params({"gate (b), margin": 0.01})
    tracker.end_run("FINISHED")
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("names")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.metrics == {"site_adaptation__20-39_earlier_votes": 0.5}
    assert run.data.params == {"gate _b__ margin": "0.01"}
