"""The GitHub workflows' shape (`make workflows` runs actionlint and zizmor on them)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from conforto._cli import app
from tests.factories import REPO

WORKFLOWS = REPO / ".github" / "workflows"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


#: YAML 1.1 reads a workflow's ``on:`` key as True.
ON: Any = True


def load(name: str) -> dict[Any, Any]:
    found: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return found


def commands(workflow: dict[str, Any]) -> list[list[str]]:
    """Every `.venv/bin/conforto …` command the workflow runs."""
    found = []
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            for line in step.get("run", "").replace("\\\n", " ").splitlines():
                if ".venv/bin/conforto " in line:
                    command = line.split(".venv/bin/conforto ", 1)[1].split("|")[0]
                    if "$(.venv/bin/conforto " in line:  # a command substitution's
                        command = command.split(")", 1)[0]
                    words = shlex.split(command)
                    found.append(words)
    return found


@pytest.mark.parametrize(
    "name", ["mlops-pipeline.yml", "model-training.yml", "model-monitoring.yml"]
)
def test_every_action_is_pinned_and_every_job_states_its_permissions(name: str) -> None:
    workflow = load(name)
    assert "permissions" not in workflow  # granted job by job
    for job_name, job in workflow["jobs"].items():
        assert "permissions" in job, job_name
        for step in job.get("steps", []):
            if "uses" in step:
                assert PINNED.match(step["uses"]), step["uses"]
                if step["uses"].startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False


@pytest.mark.parametrize(
    "name", ["mlops-pipeline.yml", "model-training.yml", "model-monitoring.yml"]
)
def test_every_conforto_command_of_a_workflow_exists(name: str) -> None:
    from typer.testing import CliRunner

    runner = CliRunner()
    found = commands(load(name))
    assert found
    for words in found:
        path = [w for w in words if not w.startswith("-")][:2]
        result = runner.invoke(app, [*path[: 2 if path[0] in _GROUPS else 1], "--help"])
        assert result.exit_code == 0, f"conforto {' '.join(words)}: {result.output}"


_GROUPS = {"data", "model", "pipeline", "tracking", "monitor", "notify", "deploy"}
#: The commands that record a stage in the trackers.
STAGES = ("data validate", "train", "gate", "model promote", "tracking build", "deploy ")
#: What ClearML needs to reach its server (else it keeps offline sessions).
CLEARML_SECRETS = ("CLEARML_API_HOST", "CLEARML_API_ACCESS_KEY", "CLEARML_API_SECRET_KEY")


@pytest.mark.parametrize(
    "name", ["mlops-pipeline.yml", "model-training.yml", "model-monitoring.yml"]
)
def test_every_step_that_tracks_in_clearml_has_its_credentials(name: str) -> None:
    """Every step that records a stage where the trackers include ClearML passes its
    credentials: online once the secrets are set (without them, offline sessions the job
    uploads)."""
    workflow = load(name)
    tracked = 0
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            env = {**workflow.get("env", {}), **job.get("env", {}), **step.get("env", {})}
            run = [" ".join(words) for words in commands({"jobs": {job_name: {"steps": [step]}}})]
            if not any(line.startswith(STAGES) for line in run):
                continue
            if "clearml" not in env.get("CONFORTO_TRACKING__BACKENDS", ""):
                continue
            tracked += 1
            for secret in CLEARML_SECRETS:
                assert env.get(secret) == f"${{{{ secrets.{secret} }}}}", (job_name, secret)
    assert tracked or name == "model-monitoring.yml"  # its check records in MLflow only


def test_codecov_uploads_the_report_ci_writes() -> None:
    """The test job's codecov step uploads the XML report of `make test` (pytest-cov's
    ``--cov-report=xml``: coverage.xml), which `.ci/run` runs (the rehearsal's test job runs a
    short list of targets instead, without a report)."""
    steps = load("mlops-pipeline.yml")["jobs"]["test"]["steps"]
    upload = next(s for s in steps if s.get("uses", "").startswith("codecov/codecov-action@"))
    assert upload["with"]["files"] == "coverage.xml"
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.M)
    assert recipe is not None
    assert re.search(r"--cov-report=xml(\s|$)", recipe[1])
    assert re.search(r"^run_targets test ", (REPO / ".ci" / "run").read_text(), re.M)


def test_the_main_pipeline_ships_main_only_to_production_behind_reviewers() -> None:
    jobs = load("mlops-pipeline.yml")["jobs"]
    on = load("mlops-pipeline.yml")[ON]
    assert on["push"]["branches"] == ["main", "develop"]
    assert on["pull_request"]["branches"] == ["main"]
    assert list(jobs) == ["test", "image", "tracking", "staging", "production", "release", "slack"]
    assert jobs["production"]["environment"] == "production"
    assert "refs/heads/main" in jobs["production"]["if"]
    assert "refs/heads/develop" not in jobs["production"]["if"]
    assert jobs["staging"]["needs"] == ["image", "tracking"]
    assert jobs["slack"]["if"] == "always() && github.event_name != 'pull_request'"


def test_training_runs_on_sundays_at_two_and_on_demand() -> None:
    workflow = load("model-training.yml")
    assert workflow[ON]["schedule"] == [{"cron": "0 2 * * 0"}]
    assert "workflow_dispatch" in workflow[ON]
    assert list(workflow["jobs"]) == [
        "data-validation",
        "training",
        "validation",
        "promotion",
        "deploy",
        "failure",
    ]
    secrets = re.findall(r"secrets\.(\w+)", (WORKFLOWS / "model-training.yml").read_text())
    assert set(secrets) <= {
        "MLFLOW_TRACKING_URI",
        "MLFLOW_TRACKING_USERNAME",  # the locked registry's workflow account
        "MLFLOW_TRACKING_PASSWORD",
        "CLEARML_API_HOST",
        "CLEARML_API_ACCESS_KEY",
        "CLEARML_API_SECRET_KEY",
        "SLACK_WEBHOOK_URL",
        "PREDICTION_LOG_URL",  # the occupants' votes join the training data
    }


def test_monitoring_runs_hourly_and_starts_training_when_the_check_says_so() -> None:
    workflow = load("model-monitoring.yml")
    assert workflow[ON]["schedule"] == [{"cron": "17 * * * *"}]
    assert "workflow_dispatch" in workflow[ON]
    jobs = workflow["jobs"]
    assert list(jobs) == ["check", "retrain", "failure"]
    assert jobs["retrain"]["if"] == "needs.check.outputs.retrain == 'true'"
    assert jobs["retrain"]["permissions"] == {"actions": "write"}
    assert "model-training.yml" in jobs["retrain"]["steps"][0]["run"]
    assert [words[:2] for words in commands(workflow)] == [
        ["monitor", "drift"],
        ["monitor", "performance"],
        ["monitor", "check"],
        ["notify", "message"],
    ]


def test_workflow_files_are_where_github_reads_them() -> None:
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == [
        "mlops-pipeline.yml",
        "model-monitoring.yml",
        "model-training.yml",
    ]
    assert Path(REPO / "Makefile").read_text().count("zizmor --offline") == 1


def test_every_test_folder_is_run_by_a_make_target() -> None:
    """`make test` names its folders (the slowest first): a new folder must be named too."""
    makefile = (REPO / "Makefile").read_text()
    named = set(re.findall(r"\btests/(\w+)", makefile))
    folders = {p.parent.name for p in (REPO / "tests").glob("*/test_*.py")}
    assert folders <= named, f"not run by any target: {sorted(folders - named)}"


@pytest.mark.parametrize(
    "name", ["mlops-pipeline.yml", "model-training.yml", "model-monitoring.yml"]
)
def test_every_step_that_reaches_the_registry_signs_in(name: str) -> None:
    """The registry is locked: wherever a step has its URI, it has an account's credentials,
    from secrets (the monitoring workflow's own, read-only account)."""
    workflow = load(name)
    account = "MLFLOW_MONITORING" if name == "model-monitoring.yml" else "MLFLOW_TRACKING"
    for job_name, job in workflow["jobs"].items():
        for step in job["steps"]:
            env = {**workflow.get("env", {}), **job.get("env", {}), **step.get("env", {})}
            if "CONFORTO_TRACKING__URI" not in env:
                continue
            assert env["MLFLOW_TRACKING_USERNAME"] == f"${{{{ secrets.{account}_USERNAME }}}}", (
                job_name
            )
            assert env["MLFLOW_TRACKING_PASSWORD"] == f"${{{{ secrets.{account}_PASSWORD }}}}", (
                job_name
            )
