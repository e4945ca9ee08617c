"""The container image, built and run for real under podman (``make test-image``).

Built offline from a local Debian base (``deploy/image/debian-base.sh``) and the wheelhouse made
on the host, then checked from outside: the smoke test passes, an answer equals ``conforto
predict``'s, the process is not root, the root filesystem is read-only, a SIGTERM flushes the
prediction log to its volume, and the image holds no secret, history, tests or data.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from typing import TYPE_CHECKING, Any

import httpx
import pandas as pd
import pytest
from tests.cli import conforto_cli
from tests.factories import REPO, table_rows
from tests.processes import PODMAN, free_port, remove_images, scrape

from conforto._deploy.smoke import golden_cases, smoke
from conforto._model.artifact import load_model
from conforto._model.predict import predict_file
from conforto._registry.model_registry import open_registry
from conforto._registry.registration import write_registration
from conforto._settings import get_settings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

LIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
BASE = os.environ.get("CONFORTO_IMAGE_BASE", "localhost/conforto-base:bookworm")
TAG = "localhost/conforto:test"
#: The container's own /tmp, in memory: the root filesystem is read-only.
READ_ONLY = ["--read-only", "--tmpfs", "/tmp"]  # noqa: S108 - inside the container
#: What the image must not hold (the baked model's own files aside).
FIND_FORBIDDEN = (
    "find / -xdev \\( -name .git -o -name tests -o -name '*.csv*' -o -name '*.parquet' "
    "-o -name .env -o -name id_rsa -o -name slack_webhook_url \\) -not -path '/model/*' -print"
)
#: The registry version the baked model's registration record (and the image's label) says.
VERSION = "7"
OBS = {"ta": 24.5, "tr": 25.0, "rh": 55.0, "vel": 0.15, "met": 1.1, "clo": 0.6}


def podman(*args: str | Path, check: bool = True, timeout: float = 900) -> str:
    done = subprocess.run(
        [*PODMAN, *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"podman {args[:3]} failed: {done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return done.stdout


@pytest.fixture(scope="session")
def context(tmp_path_factory: pytest.TempPathFactory, trained_model: Path) -> Path:
    """A build context of exactly what the image may take (the .dockerignore says the same)."""
    root = tmp_path_factory.mktemp("context")
    for name in ("Dockerfile", "pyproject.toml", "README.md", "requirements-serve.lock"):
        shutil.copy(REPO / name, root / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO / "src", root / "src", ignore=ignore)
    shutil.copytree(REPO / "wheelhouse", root / "wheelhouse")
    shutil.copytree(REPO / "deploy/no-model", root / "deploy/no-model")
    shutil.copytree(trained_model, root / "model")
    write_registration(root / "model", VERSION, get_settings().tracking.model_name)
    return root


@pytest.fixture(scope="session")
def image(context: Path) -> Iterator[str]:
    podman("image", "exists", BASE)  # deploy/image/debian-base.sh makes it
    build = ["build", "--format", "docker", "--network", "none", *LIMITS, "-t", TAG]
    build += ["--label", f"io.conforto.model.version={VERSION}"]  # as `make image` labels it
    podman(*build, "--build-arg", f"BASE={BASE}", "--build-arg", "MODEL_DIR=model", context)
    yield TAG
    remove_images(TAG, "127.0.0.1:")  # with what the push test pulled from its registry


def test_without_wheels_or_an_index_the_build_stops_first_and_says_what_to_run(
    context: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "context"
    shutil.copytree(context, bare, ignore=shutil.ignore_patterns("*.whl", "*.tar.gz"))
    assert [p.name for p in (bare / "wheelhouse").iterdir()] == ["README.md"]  # a fresh clone's
    build = ["build", "--format", "docker", "--network", "none", "--no-cache", "-t", f"{TAG}-x"]
    done = subprocess.run(
        [*PODMAN, *build, "--build-arg", f"BASE={BASE}", str(bare)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "./wheelhouse is empty: dependencies from PyPI" in out
    assert "no wheels in ./wheelhouse and no package index reachable" in out
    assert "make image" in out


class Container:
    """The image running, port 8080 published on 127.0.0.1; removed at the end.

    ``host_network``: in the host's network instead, serving on 127.0.0.1 only, where it
    reaches the host's loopback servers (a webhook receiver).
    """

    def __init__(
        self, image: str, *args: str, home: Path | None = None, host_network: bool = False
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        volume = ["-v", f"{home}:/var/lib/conforto:Z"] if home else []
        network = ["--network", "host"] if host_network else ["-p", f"127.0.0.1:{self.port}:8080"]
        command = ["--host", "127.0.0.1", "--port", str(self.port)] if host_network else []
        run = ["run", "--detach", *READ_ONLY, *LIMITS, *volume, *network, *args, image, *command]
        self.id = podman(*run).strip()

    def wait_ready(self, timeout: float = 60.0) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return time.monotonic() - start
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"not ready: {podman('logs', self.id, check=False)[-3000:]}")

    def remove(self) -> None:
        podman("rm", "--force", "--time", "2", self.id, check=False)


@pytest.fixture
def running(image: str, tmp_path: Path) -> Iterator[Container]:
    home = tmp_path / "volume"  # the container's home, a volume
    home.mkdir()
    os.chown(home, 10001, 10001)  # the container's user writes the prediction log here
    container = Container(image, home=home)
    container.wait_ready()
    yield container
    container.remove()


def test_the_image_passes_its_smoke_test_and_answers_as_batch_prediction(
    running: Container, trained_model: Path, tmp_path: Path
) -> None:
    model = load_model(trained_model)
    result = smoke(running.url, model, version=VERSION)
    assert result.passed, result.reason
    assert result.model_version == VERSION  # its registration record, baked beside it
    counted = scrape(f"{running.url}/metrics")
    prefix = 'conforto_predictions_total{kind="smoke"'
    smoked = sum(v for k, v in counted.items() if k.startswith(prefix))
    assert smoked == len(golden_cases(model))  # told apart from occupants' rooms
    answer = httpx.post(f"{running.url}/predict", json=OBS).json()
    pd.DataFrame([OBS]).to_csv(tmp_path / "in.csv", index=False)
    predict_file(model, tmp_path / "in.csv", tmp_path / "out.csv")
    batch = pd.read_csv(tmp_path / "out.csv").iloc[0]
    for name, p in answer["probabilities"].items():
        assert abs(p - batch[f"p_{name}"]) < 1e-6
    assert answer["predicted_class"] == batch["predicted_class"]


def test_a_wrong_model_fails_the_smoke_test(running: Container, second_model: Path) -> None:
    result = smoke(running.url, load_model(second_model))
    assert not result.passed
    assert "another model" in result.reason


def test_a_challenger_the_service_stops_reaches_the_webhook(
    image: str, second_model: Path, tmp_path: Path, slack: tuple[str, list[dict[str, Any]]]
) -> None:
    """The service's own notification, from the image's install alone: a shadow challenger
    slower than its limit is stopped, and Slack (a local receiver) hears of it. Without a
    registry in the image, a challenger named by its version is refused, saying why."""
    url, received = slack
    home, challenger = tmp_path / "volume", tmp_path / "challenger"
    home.mkdir()
    os.chown(home, 10001, 10001)
    shutil.copytree(second_model, challenger)
    for path in [challenger, *challenger.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # the container's user reads it
    settings = {
        "CONFORTO_SERVE__CHALLENGER__MODEL": "/challenger",
        "CONFORTO_SERVE__CHALLENGER__MIN_PREDICTIONS": "5",
        "CONFORTO_SERVE__CHALLENGER__MAX_P99_MS": "0.001",  # no model scores that fast
        "CONFORTO_NOTIFY__SLACK_WEBHOOK_URL": url,
        "CONFORTO_SERVE__ADMIN_TOKEN": "image-test",
    }
    env = [arg for name, value in settings.items() for arg in ("--env", f"{name}={value}")]
    mount = ["-v", f"{challenger}:/challenger:ro,Z"]
    container = Container(image, *env, *mount, home=home, host_network=True)
    try:
        container.wait_ready()
        for _ in range(20):
            assert httpx.post(f"{container.url}/predict", json=OBS).status_code == 200
        deadline = time.monotonic() + 30
        while not received and time.monotonic() < deadline:
            time.sleep(0.1)
        by_version = httpx.post(
            f"{container.url}/admin/challenger",
            json={"model": "2"},
            headers={"Authorization": "Bearer image-test"},
        )
        logs = podman("logs", container.id, check=False)
    finally:
        container.remove()
    assert [m["text"] for m in received] == [
        f":octagonal_sign: conforto challenger {load_model(second_model).version} stopped"
    ], logs[-3000:]
    assert "p99" in json.dumps(received[0]["blocks"])
    assert by_version.status_code == 409
    assert "knows only the models baked or mounted" in by_version.json()["detail"]


def test_it_runs_as_a_user_on_a_read_only_root(running: Container) -> None:
    assert podman("exec", running.id, "id", "-u").strip() == "10001"
    touch = [*PODMAN, "exec", running.id, "touch", "/opt/conforto/x"]
    denied = subprocess.run(touch, capture_output=True, text=True, check=False)
    assert denied.returncode != 0
    assert "Read-only file system" in denied.stderr
    config = json.loads(podman("inspect", running.id))[0]
    assert config["HostConfig"]["ReadonlyRootfs"] is True


def test_sigterm_flushes_the_prediction_log_to_its_volume(image: str, tmp_path: Path) -> None:
    home = tmp_path / "volume"  # the container's home, a volume
    home.mkdir()
    os.chown(home, 10001, 10001)
    container = Container(image, home=home)
    try:
        container.wait_ready()
        url = f"{container.url}/predict"
        ids = [httpx.post(url, json=OBS).json()["prediction_id"] for _ in range(25)]
        podman("stop", "--time", "20", container.id)  # SIGTERM, then the grace period
        assert podman("inspect", "--format", "{{.State.ExitCode}}", container.id).strip() == "0"
    finally:
        container.remove()
    from conforto._predictions.schema import predictions

    stored = table_rows(f"sqlite:///{home / 'predictions.db'}", predictions)
    assert sorted(r["prediction_id"] for r in stored) == sorted(ids)


def test_the_image_holds_no_secret_history_tests_or_data(image: str) -> None:
    found = podman(
        "run", "--rm", *LIMITS, "--user", "0", "--entrypoint", "sh", image, "-c", FIND_FORBIDDEN
    )  # as root: every folder searched
    assert found.split() == []
    env = json.loads(podman("image", "inspect", image))[0]["Config"]["Env"]
    assert not [e for e in env if any(k in e for k in ("TOKEN", "SECRET", "WEBHOOK", "PASSWORD"))]


def test_a_training_command_in_the_serving_image_says_which_extra_it_needs(image: str) -> None:
    done = subprocess.run(
        [*PODMAN, "run", "--rm", *LIMITS, "--entrypoint", "conforto", image, "data", "validate"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "pip install 'conforto[train]'" in done.stderr


@pytest.mark.parametrize("home", ["relative"], indirect=True)  # a new user's: no CONFORTO_HOME
def test_deploy_local_runs_the_image_under_podman_from_a_relative_home(
    image: str, trained_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staging = free_port()
    monkeypatch.setenv("CONFORTO_DEPLOY__PORT", str(free_port()))
    monkeypatch.setenv("CONFORTO_DEPLOY__STAGING_PORT", str(staging))
    monkeypatch.setenv("CONFORTO_DEPLOY__IMAGE", image)  # slots are containers
    registry = open_registry(get_settings())
    registry.register(trained_model)
    registry.promote("1", force=True)
    try:
        done = conforto_cli("deploy", "local", "--env", "staging")
        assert done.returncode == 0, done.stdout + done.stderr
        answer = httpx.post(f"http://127.0.0.1:{staging}/predict", json=OBS, timeout=10)
        assert answer.status_code == 200
        assert answer.json()["predicted_class"] in ("cool", "neutral", "warm")
    finally:
        stopped = conforto_cli("deploy", "stop")
    assert stopped.returncode == 0, stopped.stderr


def test_the_image_is_pushed_by_its_builder_and_pulled_by_digest(
    image: str, tmp_path: Path
) -> None:
    """`make push-image`'s script against a real OCI registry (Debian's docker-registry): the
    engine that built the image pushes it (podman here), and the digest it prints pulls it."""
    from tests.processes import Daemon

    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'store'}}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )
    registry = Daemon(["docker-registry", "serve", str(config)], "/v2/", port)
    target = f"127.0.0.1:{port}/conforto/conforto:test"
    try:
        done = subprocess.run(
            [REPO / "deploy/image/push.sh", target],
            env={**os.environ, "SOURCE": image, "REGISTRY_TLS_VERIFY": "false"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        pushed = done.stdout.strip().splitlines()[-1]
        assert pushed.startswith(f"127.0.0.1:{port}/conforto/conforto@sha256:")
        assert (tmp_path / "build/image/pushed").read_text().strip() == pushed
        assert (tmp_path / "build/image/model-version").read_text().strip() == VERSION
        assert (tmp_path / "build/image/challenger-version").read_text() == "\n"  # none baked
        podman("rmi", target)
        podman("pull", "--tls-verify=false", "--quiet", pushed)
        digests = json.loads(
            podman("image", "inspect", "--format", "{{json .RepoDigests}}", pushed)
        )
        assert pushed in digests  # the registry served exactly the manifest it was given
    finally:  # the image itself goes with the fixture's tag
        registry.stop()
