"""`conforto deploy cloudrun` up to the wire: a fake `gcloud` on PATH records every call and
keeps the traffic; its `describe` points at a real local service, which the smoke tests hit."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from conforto._registry.model_registry import open_registry
from conforto._registry.registration import write_registration
from conforto._settings import get_settings
from tests.cli import conforto_cli
from tests.factories import REPO
from tests.fakes import describe_cloud, install

pytestmark = pytest.mark.integration
IMAGE = "europe-docker.pkg.dev/proj/conforto/conforto@sha256:" + "0123456789abcdef" * 4
#: The fake Google Cloud's project, and its environments (a service account and a secret each).
PROJECT = "conforto-test"
ENVIRONMENTS = ("staging", "production")
SECRETS = ("log-url", "metrics-token", "admin-token")


@pytest.fixture
def gcloud(tmp_path: Path, serve: Any, trained_model: Path) -> dict[str, str]:
    """The fake on PATH, its state folder, and a service of ``trained_model`` behind it."""
    bin_dir = install(tmp_path / "bin", "gcloud").parent
    server = serve("--model", str(trained_model))
    accounts = [f"conforto-{env}@{PROJECT}.iam.gserviceaccount.com" for env in ENVIRONMENTS]
    secrets = {f"conforto-{env}-{name}": "x" for env in ENVIRONMENTS for name in SECRETS}
    describe_cloud(tmp_path / "gcloud", PROJECT, accounts, secrets)
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_GCLOUD_DIR": str(tmp_path / "gcloud"),
        "FAKE_GCLOUD_URL": server.url,
        "CONFORTO_DEPLOY__GCP_PROJECT": PROJECT,
    }


def calls(env: dict[str, str]) -> list[list[str]]:
    lines = (Path(env["FAKE_GCLOUD_DIR"]) / "calls.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def traffic(env: dict[str, str], service: str) -> list[dict[str, Any]]:
    state = json.loads((Path(env["FAKE_GCLOUD_DIR"]) / "state.json").read_text())
    found: list[dict[str, Any]] = state["services"][service]["traffic"]
    return found


MANIFESTS = ["--manifests", str(REPO / "deploy/cloudrun")]


def deploy(env: dict[str, str], *args: str) -> Any:
    return conforto_cli("deploy", "cloudrun", *MANIFESTS, *args, env=env)


@pytest.fixture
def versions(
    home: Path,  # noqa: ARG001 - for its effect: the template store as home
    trained_model: Path,
    second_model: Path,
) -> None:
    registry = open_registry(get_settings())
    registry.register(trained_model)  # version 1: what the fake's URL serves
    registry.register(second_model)  # version 2: another model
    registry.promote("1", force=True)


def test_dry_run_needs_no_project_and_names_its_placeholders() -> None:
    done = conforto_cli(
        "deploy", "cloudrun", *MANIFESTS, "--env", "production", "--canary", "10", "--dry-run"
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "image: IMAGE@sha256:DIGEST" in out
    assert "--project PROJECT_ID" in out
    assert "revisionName: PREVIOUS_REVISION" in out
    assert "autoscaling.knative.dev/minScale: '1'" in out
    assert "autoscaling.knative.dev/maxScale: '50'" in out
    assert "cpu: '2'" in out
    assert "memory: 2Gi" in out
    assert "path: /ready" in out  # the startup probe
    assert "path: /health" in out  # liveness
    assert "name: conforto-production-metrics-token" in out  # /metrics not for the world
    assert "--to-revisions conforto-production-vversion-digest=10" in out  # no registry here
    assert not get_settings().registry_dir.exists()  # and the dry run made none


@pytest.mark.usefixtures("versions")
def test_dry_run_names_the_registered_version() -> None:
    done = conforto_cli("deploy", "cloudrun", *MANIFESTS, "--env", "staging", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "--to-revisions conforto-staging-v1-digest=100" in done.stdout


@pytest.mark.usefixtures("versions")
def test_first_then_canary_deploys_run_the_exact_commands(
    gcloud: dict[str, str], home: Path
) -> None:
    first = deploy(gcloud, "--env", "staging", "--image", IMAGE)
    assert first.returncode == 0, first.stdout + first.stderr
    revision = "conforto-staging-v1-0123456789"
    scope = ["--region", "europe-west1", "--project", "conforto-test", "--quiet"]
    manifest = str(home / "deploy/cloudrun/staging.yaml")
    assert [c for c in calls(gcloud) if c[0] == "run"] == [
        ["run", "services", "describe", "conforto-staging", *scope, "--format", "json"],
        ["run", "services", "replace", manifest, *scope],
        [
            *("run", "services", "add-iam-policy-binding", "conforto-staging", *scope),
            *("--member", "allUsers", "--role", "roles/run.invoker"),
        ],
        ["run", "services", "describe", "conforto-staging", *scope, "--format", "json"],
    ]
    assert traffic(gcloud, "conforto-staging") == [{"latestRevision": True, "percent": 100}]

    again = deploy(
        gcloud, "--env", "staging", "--image", IMAGE.replace("0123", "4567", 1), "--canary", "25"
    )
    assert again.returncode == 0, again.stdout + again.stderr
    new = "conforto-staging-v1-4567456789"
    shifts = [c[-1] for c in calls(gcloud)[3:] if c[2] == "update-traffic"]
    assert shifts == [f"{new}=25", f"{new}=100"]
    assert traffic(gcloud, "conforto-staging") == [{"revisionName": new, "percent": 100}]
    assert f"{new} serves conforto-staging" in again.stdout
    assert revision != new
    tags = open_registry(get_settings()).store.get("1").tags
    assert any(t.startswith("deployed-") for t in tags)


@pytest.mark.usefixtures("versions")
def test_a_service_nobody_may_call_fails_its_first_smoke_test(gcloud: dict[str, str]) -> None:
    closed = deploy(
        {**gcloud, "CONFORTO_DEPLOY__INVOKER": ""}, "--env", "staging", "--image", IMAGE
    )
    assert closed.returncode == 1
    assert "smoke test on the candidate revision failed" in closed.stderr
    assert not any(c[2] == "add-iam-policy-binding" for c in calls(gcloud))


@pytest.mark.usefixtures("versions")
def test_a_failed_smoke_test_leaves_the_traffic_where_it_was(gcloud: dict[str, str]) -> None:
    assert deploy(gcloud, "--env", "production", "--image", IMAGE).returncode == 0
    before = traffic(gcloud, "conforto-production")
    wrong = deploy(
        gcloud, "--env", "production", "--image", IMAGE.replace("0", "1"), "--version", "2"
    )  # the fake's URL serves version 1
    assert wrong.returncode == 1
    assert "smoke test on the candidate revision failed" in wrong.stderr
    assert "the service runs another version than 2" in wrong.stderr  # said by /ready
    previous = "conforto-production-v1-0123456789"
    assert f"traffic back on {previous}" in wrong.stderr
    assert calls(gcloud)[-1][-1] == f"{previous}=100"
    assert traffic(gcloud, "conforto-production")[0] == {"revisionName": previous, "percent": 100}
    assert before == [{"latestRevision": True, "percent": 100}]


@pytest.mark.usefixtures("versions")
def test_a_failing_gcloud_rolls_back_and_exits_1(gcloud: dict[str, str]) -> None:
    assert deploy(gcloud, "--env", "production", "--image", IMAGE).returncode == 0
    failing = {**gcloud, "FAKE_GCLOUD_FAIL": "update-traffic:1"}
    done = deploy(
        failing, "--env", "production", "--image", IMAGE.replace("0", "2"), "--canary", "10"
    )
    assert done.returncode == 1
    assert "injected failure" in done.stderr
    assert "traffic back on conforto-production-v1-0123456789" in done.stderr
    replace = deploy(
        {**gcloud, "FAKE_GCLOUD_FAIL": "replace:3"},
        "--env",
        "production",
        "--image",
        IMAGE.replace("0", "3"),
    )
    assert replace.returncode == 1
    assert "the traffic never moved" in replace.stderr


@pytest.mark.usefixtures("versions")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image", "conforto:latest"], "by digest"),
        (["--image", IMAGE, "--project", "My Project"], "not a Google Cloud project ID"),
        (["--image", IMAGE, "--region", "Mars"], "not a Google Cloud region"),
        (["--image", IMAGE, "--version", ""], "--version is empty"),
    ],
)
def test_a_bad_image_project_or_region_is_refused_before_any_call(
    gcloud: dict[str, str], args: list[str], message: str
) -> None:
    done = deploy(gcloud, "--env", "staging", *args)
    assert done.returncode == 1
    assert message in done.stderr
    assert not (Path(gcloud["FAKE_GCLOUD_DIR"]) / "calls.jsonl").exists()


def cloud(env: dict[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((Path(env["FAKE_GCLOUD_DIR"]) / "cloud.json").read_text())
    return found


@pytest.mark.usefixtures("versions")
def test_cloud_run_refuses_what_does_not_exist_or_fit_its_schema(
    gcloud: dict[str, str], tmp_path: Path
) -> None:
    """The fake refuses what Cloud Run would: a secret or a service account the project lacks,
    another project, a field the service schema does not have; the traffic never moves."""
    described = cloud(gcloud)
    del described["secrets"]["conforto-staging-log-url"]
    (Path(gcloud["FAKE_GCLOUD_DIR"]) / "cloud.json").write_text(json.dumps(described))
    missing = deploy(gcloud, "--env", "staging", "--image", IMAGE)
    assert missing.returncode == 1
    said = "secret conforto-staging-log-url (for CONFORTO_SERVE__LOG_URL) not found in the project"
    assert said in missing.stderr
    assert "the traffic never moved" in missing.stderr

    other = deploy(
        {**gcloud, "CONFORTO_DEPLOY__GCP_PROJECT": "someone-else"},
        "--env",
        "production",
        "--image",
        IMAGE,
    )
    assert other.returncode == 1
    assert "project someone-else does not exist, or you may not use it" in other.stderr

    manifests = tmp_path / "manifests"
    manifests.mkdir()
    template = (REPO / "deploy/cloudrun/production.yaml").read_text()
    timeout = "      timeoutSeconds: 60\n"
    for old, new, said in (
        (timeout, f"{timeout}      replicas: 3\n", "unknown fields: spec.template.spec.replicas"),
        (
            "conforto-production@",
            "nobody@",
            f"service account nobody@{PROJECT}.iam.gserviceaccount.com does not exist",
        ),
    ):
        (manifests / "production.yaml").write_text(template.replace(old, new))
        at = ["--manifests", str(manifests), "--env", "production", "--image", IMAGE]
        refused = conforto_cli("deploy", "cloudrun", *at, env=gcloud)
        assert refused.returncode == 1
        assert said in refused.stderr
    assert "conforto-production" not in json.loads(
        (Path(gcloud["FAKE_GCLOUD_DIR"]) / "state.json").read_text()
    ).get("services", {})


@pytest.mark.usefixtures("versions")
def test_every_deploy_applies_the_alert_policies_that_notify_slack(gcloud: dict[str, str]) -> None:
    """deploy/cloudrun/alerts: created by the first deploy, updated by the next (by display
    name), each with the Slack channel; a channel the project lacks is refused, and said."""
    channel = f"projects/{PROJECT}/notificationChannels/42"
    described = cloud(gcloud) | {"channels": [channel]}
    (Path(gcloud["FAKE_GCLOUD_DIR"]) / "cloud.json").write_text(json.dumps(described))
    env = {**gcloud, "CONFORTO_DEPLOY__ALERT_CHANNEL": channel}
    first = deploy(env, "--env", "production", "--image", IMAGE)
    assert first.returncode == 0, first.stderr
    files = list((REPO / "deploy/cloudrun/alerts").glob("*.yaml"))
    assert first.stdout.count("alert policy created") == len(files) == 4

    def policies() -> list[dict[str, Any]]:
        state = json.loads((Path(gcloud["FAKE_GCLOUD_DIR"]) / "state.json").read_text())
        return list(state["policies"].values())

    assert all(p["displayName"].startswith("conforto-production ") for p in policies())
    assert all(p["notificationChannels"] == [channel] for p in policies())
    again = deploy(env, "--env", "production", "--image", IMAGE.replace("0", "5"))
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("alert policy updated") == 4
    assert len(policies()) == 4

    unknown = {
        **gcloud,
        "CONFORTO_DEPLOY__ALERT_CHANNEL": f"projects/{PROJECT}/notificationChannels/7",
    }
    refused = deploy(unknown, "--env", "production", "--image", IMAGE.replace("0", "6"))
    assert refused.returncode == 1
    assert "deployed, but its alert policies were not applied" in refused.stderr
    assert f"notification channel projects/{PROJECT}/notificationChannels/7 does not exist" in (
        refused.stderr
    )


@pytest.mark.usefixtures("versions")
def test_a_revision_with_a_baked_challenger_runs_its_shadow_or_is_rolled_back(
    gcloud: dict[str, str], serve: Any, trained_model: Path, second_model: Path, tmp_path: Path
) -> None:
    """--challenger: the image has version 2 baked in beside production; the revision runs it
    as a shadow, CPU kept after each response, and /ready must name it."""
    dry = deploy(gcloud, "--env", "production", "--challenger", "2", "--dry-run")
    assert "run.googleapis.com/cpu-throttling: 'false'" in dry.stdout
    assert "value: /challenger" in dry.stdout
    assert "cpu-throttling" not in deploy(gcloud, "--env", "production", "--dry-run").stdout
    assert deploy(gcloud, "--env", "production", "--image", IMAGE).returncode == 0
    alone = deploy(
        gcloud, "--env", "production", "--image", IMAGE.replace("0", "1"), "--challenger", "2"
    )  # the fake's URL serves version 1 and no challenger
    assert alone.returncode == 1
    assert "names challenger None, not 2" in alone.stderr
    assert "traffic back on conforto-production-v1-0123456789" in alone.stderr
    baked = tmp_path / "challenger"
    shutil.copytree(second_model, baked)
    write_registration(baked, "2", get_settings().tracking.model_name)  # as the image job's
    beside = serve("--model", str(trained_model), "--challenger", str(baked))
    shadowed = {**gcloud, "FAKE_GCLOUD_URL": beside.url}
    image = IMAGE.replace("0", "2")
    done = deploy(shadowed, "--env", "production", "--image", image, "--challenger", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    new = "conforto-production-v1-2123456789"
    assert traffic(gcloud, "conforto-production") == [{"revisionName": new, "percent": 100}]
    replaced = [c for c in calls(gcloud) if c[2] == "replace"][-1]
    template = yaml.safe_load(Path(replaced[3]).read_text())["spec"]["template"]
    assert template["metadata"]["annotations"]["run.googleapis.com/cpu-throttling"] == "false"
    assert {"name": "CONFORTO_SERVE__CHALLENGER__MODEL", "value": "/challenger"} in template[
        "spec"
    ]["containers"][0]["env"]
    bad = deploy(gcloud, "--env", "production", "--image", IMAGE, "--challenger", "two")
    assert bad.returncode == 1
    assert "is not a version number" in bad.stderr
