"""The three workflows, run by a real Actions runner (act) on every path a user triggers: the
first weekly training on an empty registry, the deploy it dispatches, a push to main, a pull
request, a training whose model is worse than production's, a week with nothing new and one
with occupants' votes, and the hourly monitoring of a quiet day, then of lasting drift. Each
scenario has a world of its own (the ones after the first training start from a copy of the
registry it left), so they hold in any order; each asserts which jobs ran and what the model
registry, the OCI registry, the fake Cloud Run and Slack saw.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from typing import TYPE_CHECKING, Any

import httpx

from conforto._data.load import load_dataset
from conforto._model.artifact import load_model
from conforto._predictions.schema import shadow
from conforto._settings import Settings
from tests.cli import conforto_cli
from tests.factories import observations, serve_and_vote, table_rows, variant
from tests.fakes.gcloud import serving_revision
from tests.processes import ADMIN, eventually
from tests.workflows.conftest import (
    ALERT_CHANNEL,
    QUICK_CHECKS,
    SCHEDULE,
    SHADOW_PERIOD,
    scraper_token,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.workflows.conftest import Rehearsal, Run
DISPATCH: dict[str, Any] = {"inputs": {}}
TRAINING = {"data-validation", "training", "validation", "promotion", "deploy"}
DEPLOY = {"test", "image", "tracking", "staging", "production", "release", "slack"}
RUN_URL = "https://github.com/rehearsal/conforto/actions/runs/"
HOURLY = {"schedule": "17 * * * *"}


def succeeded(run: Run, jobs: set[str]) -> None:
    assert {j: run.jobs.get(j) for j in jobs} == dict.fromkeys(jobs, "success"), run.explain()


def registry(world: Rehearsal) -> dict[str, list[str]]:
    """Each version's lifecycle tags in the tracking server's registry."""
    done = conforto_cli(
        "model",
        "list",
        "--json",
        env=world.tracking(),
    )
    assert done.returncode == 0, done.stderr
    return {v["version"]: v["tags"] for v in json.loads(done.stdout)}


def tracked(world: Rehearsal) -> list[str]:
    """The names of the tracking server's runs, oldest first (as its admin sees them)."""
    uri = world.secrets["MLFLOW_TRACKING_URI"]
    with httpx.Client(base_url=f"{uri}/api/2.0/mlflow", auth=ADMIN) as api:
        found = api.post("/experiments/search", json={"max_results": 100}).json()
        query = {"max_results": 1000, "order_by": ["attributes.start_time ASC"]}
        ids = [e["experiment_id"] for e in found["experiments"]]
        runs = api.post("/runs/search", json={**query, "experiment_ids": ids}).json()
    return [r["info"]["run_name"] for r in runs.get("runs", [])]


def slack_texts(world: Rehearsal) -> list[str]:
    return [json.dumps(m) for m in world.slack]


def test_the_first_weekly_training_promotes_a_model_and_dispatches_its_deploy(
    first_training: tuple[Rehearsal, Run],
) -> None:
    rehearsal, run = first_training
    succeeded(run, TRAINING)
    assert "failure" not in run.jobs
    assert registry(rehearsal) == {"1": ["training", "validated", "production"]}
    assert rehearsal.gh_calls() == [
        ["workflow", "run", "mlops-pipeline.yml", "--ref", "main", "--repo", "rehearsal/conforto"]
    ]
    names = tracked(rehearsal)
    for stage in ("data_validation", "model_training", "model_validation", "model_promotion"):
        assert stage in names, names
    reports: Path = run.artifacts / "data-reports"
    assert (reports / "validation.json").is_file()
    assert (reports / "profile.html").is_file()
    assert not (reports / "drift").exists()  # no production model yet: nothing to drift from
    for job in ("data-validation", "training", "validation", "promotion"):  # no ClearML server
        assert any((run.artifacts / f"clearml-offline-{job}").glob("*.zip")), job


def production_model(world: Rehearsal, out: Path) -> Path:
    """The production version's artifact, downloaded from the tracking server into ``out``."""
    done = conforto_cli("model", "download", "production", "--out", str(out), env=world.tracking())
    assert done.returncode == 0, done.stderr
    return out


def images(world: Rehearsal) -> list[str]:
    """The tags of the image in the OCI registry."""
    found = httpx.get(f"{world.registry}/v2/conforto/conforto/tags/list")
    return sorted(found.json()["tags"]) if found.status_code == 200 else []


def served(world: Rehearsal, environment: str) -> tuple[list[str], dict[str, Any]]:
    """A Cloud Run service's revisions, and what its serving revision's /ready says."""
    state = world.cloud_run()
    service = state["services"][f"conforto-{environment}"]
    serving = serving_revision(service)
    assert "allUsers" in service.get("invokers", []), service  # reachable: the smoke test's need
    url = state["urls"][serving]
    health = httpx.get(f"{url}/ready").json()
    # /metrics only for Prometheus: the token of the environment's secret (the fake's cloud)
    assert httpx.get(f"{url}/metrics").status_code == 401
    scraper = {"Authorization": f"Bearer {scraper_token(environment)}"}
    assert "conforto_predictions_total" in httpx.get(f"{url}/metrics", headers=scraper).text
    return service["revisions"], health


def validated(world: Rehearsal, version: str) -> None:
    """Tag ``version`` validated, as the gate's job would (through the server, as its admin)."""
    uri = world.secrets["MLFLOW_TRACKING_URI"]
    tag = {
        "name": Settings().tracking.model_name,
        "version": version,
        "key": "validated",
        "value": "rehearsal",
    }
    with httpx.Client(base_url=f"{uri}/api/2.0/mlflow", auth=ADMIN) as api:
        api.post("/model-versions/set-tag", json=tag).raise_for_status()


def shadowed(url: str, version: str) -> int:
    """Production's predictions the challenger ``version`` scored, in the log at ``url``."""
    return sum(r["model_version"] == version for r in table_rows(url, shadow))


def test_the_deploy_it_dispatches_ships_what_it_built_and_its_shadow_earns_the_promotion(
    shadowing: Rehearsal, tmp_path: Path
) -> None:
    """`gh workflow run` arrives as workflow_dispatch: build, push, staging, production. The gate
    asks for a shadow period, so version 2 (validated) is baked in beside production as every
    revision's shadow. Between the build and the deploy (as while production waits for its
    reviewers) someone promotes version 3: every deploy still ships the versions the image was
    built with. Production's traffic is scored by the shadow into the shared PostgreSQL log,
    where the promotion job, run by hand for version 2, finds its shadow period."""
    rehearsal = shadowing
    tracking = rehearsal.tracking()
    production = production_model(rehearsal, tmp_path / "production")
    challenger = variant(production, tmp_path / "challenger")
    for model in (challenger, variant(challenger, tmp_path / "other")):
        registered = conforto_cli("model", "register", str(model), "--force", env=tracking)
        assert registered.returncode == 0, registered.stderr
    validated(rehearsal, "2")
    promote = ["-m", "conforto", "model", "promote", "3", "--force", "--reason", "meanwhile"]
    home = f"CONFORTO_HOME={tmp_path / 'home'}"
    rehearsal.env["FAKE_GCLOUD_MEANWHILE"] = shlex.join(
        ["env", *(f"{k}={v}" for k, v in tracking.items()), home, sys.executable, *promote]
    )
    run = rehearsal.act("workflow_dispatch", "mlops-pipeline.yml", DISPATCH)
    succeeded(run, DEPLOY)
    assert rehearsal.cloud_run()["meanwhile"] == 0  # version 3 promoted before the deploys
    assert images(rehearsal) == [rehearsal.sha]  # pushed by the engine that built it
    deployed = f"deployed-{rehearsal.sha[:12]}"  # by staging, then by production
    tags = registry(rehearsal)
    assert deployed in tags["1"], tags
    assert "production" in tags["3"], tags
    assert deployed not in tags["3"], tags
    for environment in ("staging", "production"):
        revisions, health = served(rehearsal, environment)
        assert len(revisions) == 1
        assert revisions[0].startswith(f"conforto-{environment}-v1-")
        assert health["model_version"] == "1", health  # its registry version, from the image
        assert health["challenger"] == "2", health  # the shadow baked beside it
    watched = rehearsal.cloud_run()["policies"].values()  # latency, 5xx, instances, memory
    assert (
        sorted(p["displayName"].split()[0] for p in watched)
        == ["conforto-production"] * 4 + ["conforto-staging"] * 4
    )
    assert all(p["notificationChannels"] == [ALERT_CHANNEL] for p in watched)
    assert "image_build" in tracked(rehearsal)
    assert "deployment" in tracked(rehearsal)
    assert (run.artifacts / "clearml-offline-tracking").is_dir()  # the ClearML sessions, kept
    told = slack_texts(rehearsal)[-1]
    assert "production success" in told, told
    assert RUN_URL in told
    assert not (rehearsal.root / "github" / "releases").exists()  # no tag: no release

    log = rehearsal.secrets["PREDICTION_LOG_URL"]
    state = rehearsal.cloud_run()
    url = state["urls"][serving_revision(state["services"]["conforto-production"])]
    rooms = load_dataset(*rehearsal.data_files("good")).frame.dropna(
        subset=["ta", "rh", "vel", "met", "clo"]
    )
    rows = observations(rooms.sample(SHADOW_PERIOD, random_state=5))
    answered = httpx.post(f"{url}/predict/batch", json={"observations": rows}, timeout=60)
    assert answered.status_code == 200, answered.text
    eventually(lambda: shadowed(log, "2") >= SHADOW_PERIOD, 60)  # every instance's, one log
    calls = len(rehearsal.gh_calls())
    run = rehearsal.act("workflow_dispatch", "model-training.yml", {"inputs": {"promote": "2"}})
    succeeded(run, {"promotion", "deploy"})
    assert run.ran() == {"promotion", "deploy"}, run.explain()  # no training
    assert "production" in registry(rehearsal)["2"]
    assert rehearsal.gh_calls()[calls:] == [
        ["workflow", "run", "mlops-pipeline.yml", "--ref", "main", "--repo", "rehearsal/conforto"]
    ]


def test_a_tagged_push_to_main_ships_and_releases(promoted: Rehearsal) -> None:
    rehearsal = promoted
    sha = rehearsal.release_commit("v1.0.0")
    push = {
        "ref": "refs/heads/main",
        "after": sha,
        "repository": {"full_name": "rehearsal/conforto"},
    }
    run = rehearsal.act("push", "mlops-pipeline.yml", push)
    succeeded(run, DEPLOY)
    assert sha in images(rehearsal)
    assert f"deployed-{sha[:12]}" in registry(rehearsal)["1"]
    revisions, health = served(rehearsal, "production")
    assert len(revisions) == 1  # its own cloud (a second deploy's new revision and canary:
    # tests/e2e/test_cloudrun.py::test_first_then_canary_deploys_run_the_exact_commands)
    assert revisions[-1].startswith("conforto-production-v1-")
    assert health["status"] == "ready"
    released = rehearsal.root / "github" / "releases" / "v1.0.0"
    assert {p.name for p in released.iterdir()} >= {"CHANGELOG.md", "MODEL_CARD.md"}
    assert "version 1" in (released / "CHANGELOG.md").read_text()
    assert rehearsal.gh_calls()[-1][:3] == ["release", "create", "v1.0.0"]
    assert "on main" in slack_texts(rehearsal)[-1]


def test_a_pull_request_is_only_tested(rehearsal: Rehearsal) -> None:
    before = (images(rehearsal), rehearsal.cloud_run(), len(rehearsal.slack))
    pull = {
        "number": 7,
        "pull_request": {
            "number": 7,
            "head": {"ref": "feature", "sha": rehearsal.sha},
            "base": {"ref": "main"},
        },
    }
    run = rehearsal.act("pull_request", "mlops-pipeline.yml", pull)
    succeeded(run, {"test"})
    assert run.ran() == {"test"}, run.explain()
    assert f"make {QUICK_CHECKS}:" in run.log  # .ci/run ran the checks it was given
    assert (images(rehearsal), rehearsal.cloud_run(), len(rehearsal.slack)) == before


def test_a_worse_challenger_is_rejected_and_told(promoted: Rehearsal) -> None:
    """The week's data has its votes shuffled: the gate rejects the model, nothing changes."""
    rehearsal = promoted
    rehearsal.serve_data("shuffled")
    run = rehearsal.act("schedule", "model-training.yml", SCHEDULE)
    assert run.jobs["validation"] == "failure", run.explain()
    succeeded(run, {"data-validation", "training", "failure"})
    assert not {"promotion", "deploy"} & run.ran()
    tags = registry(rehearsal)
    assert tags["2"] == ["training", "rejected"]  # registered, never validated
    assert tags["1"][:3] == ["training", "validated", "production"]
    assert rehearsal.gh_calls() == []  # no deploy started
    # the drift of the week's data against the production model, read from the registry
    assert (run.artifacts / "data-reports" / "drift" / "drift.json").is_file()
    told = slack_texts(rehearsal)[-1]
    assert "model-training failed (version 2)" in told, told
    assert "the gate) failure" in told
    assert RUN_URL in told


def test_a_job_without_the_registry_credentials_is_refused_and_says_which_to_set(
    promoted: Rehearsal,
) -> None:
    """The registry is locked (MLflow's basic-auth app): a repository whose secrets lack the
    workflow account's gets nothing from it, and the job says what to set."""
    rehearsal = promoted
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        del rehearsal.secrets[name]
    run = rehearsal.act("schedule", "model-training.yml", SCHEDULE)
    assert run.jobs["data-validation"] == "failure", run.explain()
    assert not {"training", "validation", "promotion", "deploy"} & run.ran()
    assert "asks who you are: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in run.log
    assert "model-training failed" in slack_texts(rehearsal)[-1]


def test_a_weekly_run_rests_on_nothing_new_and_learns_from_new_votes(
    promoted: Rehearsal, tmp_path: Path
) -> None:
    """The week after the first training: the same data and no votes register nothing and
    deploy nothing; votes gathered in the prediction log since change the training set."""
    rehearsal = promoted
    run = rehearsal.act("schedule", "model-training.yml", SCHEDULE)
    succeeded(run, {"data-validation", "training"})
    assert not {"validation", "promotion", "deploy", "failure"} & run.ran(), run.explain()
    assert list(registry(rehearsal)) == ["1"]  # nothing registered
    assert rehearsal.gh_calls() == []  # no deploy started
    told = slack_texts(rehearsal)[-1]
    assert "nothing new, version 1 was trained on the same data" in told, told

    model = production_model(rehearsal, tmp_path / "production")
    rooms = load_dataset(*rehearsal.data_files("good")).frame.dropna(subset=["thermal_sensation"])
    url = rehearsal.secrets["PREDICTION_LOG_URL"]
    votes = serve_and_vote(url, model, rooms.sample(400, random_state=4), 0.5, sites=True)
    run = rehearsal.act("schedule", "model-training.yml", SCHEDULE)
    succeeded(run, {"data-validation", "training"})
    assert "validation" in run.ran(), run.explain()  # a new version, judged
    tracking = rehearsal.tracking()
    learned = conforto_cli("model", "download", "2", "--out", str(tmp_path / "v2"), env=tracking)
    assert learned.returncode == 0, learned.stderr
    learnt, first = load_model(tmp_path / "v2").manifest, load_model(model).manifest
    assert (learnt.data.votes, learnt.data.rows) == (votes, first.data.rows + votes)
    assert learnt.data.sha256 != first.data.sha256  # the training set's fingerprint moved


def test_monitoring_passes_a_quiet_day_silently_and_starts_training_once_for_lasting_drift(
    promoted: Rehearsal, tmp_path: Path
) -> None:
    """Hourly runs: one before any traffic (no table in the log yet), then three over a day of
    production traffic 6 °C warmer than the training data, some of it voted."""
    rehearsal = promoted
    calls, told = rehearsal.gh_calls(), len(rehearsal.slack)
    quiet = rehearsal.act("schedule", "model-monitoring.yml", HOURLY)
    succeeded(quiet, {"check"})
    assert quiet.ran() == {"check"}, quiet.explain()  # no training, no failure
    assert len(rehearsal.slack) == told  # silently

    model = production_model(rehearsal, tmp_path / "production")
    rooms = load_dataset(*rehearsal.data_files("good")).frame.dropna(subset=["thermal_sensation"])
    warmer = rooms.sample(800, random_state=3).assign(ta=lambda f: f["ta"] + 6.0)
    serve_and_vote(rehearsal.secrets["PREDICTION_LOG_URL"], model, warmer, 0.3, since=23 * 3600)
    run = rehearsal.act("schedule", "model-monitoring.yml", HOURLY)
    succeeded(run, {"check", "retrain"})
    decision = json.loads(
        (run.artifacts / "monitoring-reports" / "check" / "decision.json").read_text()
    )
    assert decision["start_training"] is True
    assert any("drift on" in r and "ta" in r for r in decision["reasons"])
    assert (run.artifacts / "monitoring-reports" / "drift" / "drift.json").is_file()
    gauges = httpx.get(f"{rehearsal.pushgateway}/metrics").text
    assert re.search(r'^conforto_drift_detected\{feature="ta",[^}]*\} 1', gauges, re.M), gauges

    for _ in range(2):  # the drift lasts: the next hours hold, on other runners
        later = rehearsal.act("schedule", "model-monitoring.yml", HOURLY)
        succeeded(later, {"check"})
        assert "retrain" not in later.ran(), later.explain()
        held = json.loads(
            (later.artifacts / "monitoring-reports" / "check" / "decision.json").read_text()
        )
        assert (held["retrain"], held["start_training"]) == (True, False)
        assert "started training; the next may start from" in held["held"]
    assert rehearsal.gh_calls()[len(calls) :] == [
        ["workflow", "run", "model-training.yml", "--ref", "main", "--repo", "rehearsal/conforto"]
    ]
    said = [m for m in slack_texts(rehearsal)[told:] if "retraining is due" in m]
    assert len(said) == 1, slack_texts(rehearsal)[told:]
