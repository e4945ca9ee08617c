"""Real programs for the tests, started on 127.0.0.1 and always stopped: the service, PostgreSQL,
Prometheus's daemons, and HTTP servers in a thread."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import pytest

if TYPE_CHECKING:
    import socketserver
    from collections.abc import Callable, Iterator, Sized


ServerT = TypeVar("ServerT", bound="socketserver.BaseServer")
T = TypeVar("T")


#: podman as the tests run it: the overlay store and runc, as CI's runner has them.
PODMAN = ["podman", "--storage-driver=overlay", "--runtime", "runc"]


def remove_images(*prefixes: str) -> None:
    """Remove the podman images whose ``repository:tag`` starts with one of ``prefixes``, then
    the build stages no image uses any more (dangling): an image the tests build weighs about
    0.5 GB with its stages, and runs that leave theirs fill the disk within a few runs."""
    import subprocess

    listed = subprocess.run(
        [*PODMAN, "images", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split("\n")
    ids = {line.split()[0] for line in listed if line and line.split()[1].startswith(prefixes)}
    if ids:
        subprocess.run([*PODMAN, "rmi", "--force", *sorted(ids)], capture_output=True, check=False)
    subprocess.run([*PODMAN, "image", "prune", "--force"], capture_output=True, check=False)


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``conforto serve`` in a subprocess, on 127.0.0.1, stopped at teardown."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        import subprocess

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "conforto", "serve", "--port", str(self.port), *args],
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: see kill_all
        )

    def wait_healthy(self, timeout: float = 60.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited: {self.process.communicate()[0].decode()[-2000:]}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not become healthy")

    def children(self, pid: int | None = None) -> list[int]:
        """The process ids of a process's children (the server's by default)."""
        pid = pid or self.process.pid
        found = []
        for task in Path(f"/proc/{pid}/task").glob("*"):  # each thread lists what it started
            with contextlib.suppress(FileNotFoundError):
                found += [int(c) for c in (task / "children").read_text().split()]
        return found

    def kill_all(self) -> None:
        """SIGKILL the server and every process it started (an OOM kill of the container)."""
        import signal

        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.communicate()

    def stop(self) -> str:
        if self.process.returncode is not None:
            return ""
        self.process.terminate()
        try:
            out, _ = self.process.communicate(timeout=20)
        except Exception:
            self.process.kill()
            out, _ = self.process.communicate()
        return out.decode()


class Postgres:
    """A throwaway PostgreSQL server from the PostgreSQL binaries, on 127.0.0.1.

    PostgreSQL refuses to run as root: as root, every command runs as the ``postgres`` user
    (``runuser``), on a data folder that user owns.
    """

    def __init__(self) -> None:
        import shutil
        import tempfile

        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
        initdb = bins[0] if bins else shutil.which("initdb")
        if initdb is None:
            pytest.fail("PostgreSQL not found: apt-get install postgresql (.ci/run does)")
        self.bin = Path(initdb).parent
        self.root = Path(tempfile.mkdtemp(prefix="conforto-pg-"))
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.run(
            "initdb", "-D", str(self.root / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, tool: str, *args: str, check: bool = True) -> int:
        import subprocess

        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}")
        return done.returncode

    @property
    def running(self) -> bool:
        return self.run("pg_ctl", "-D", str(self.root / "data"), "status", check=False) == 0

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(
            "pg_ctl",
            "-D",
            str(self.root / "data"),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")

    def reset(self) -> None:
        """Drop the prediction log's tables (each test starts from an empty database)."""
        import sqlalchemy as sa

        engine = sa.create_engine(self.url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()


class Daemon:
    """A program from Debian's packages on 127.0.0.1 (Prometheus, its Pushgateway, Alertmanager,
    nginx), polled until ready and stopped at teardown."""

    def __init__(
        self,
        command: list[str],
        ready: str,
        port: int,
        cwd: Path | None = None,
        timeout: float = 30.0,
        env: dict[str, str] | None = None,
    ) -> None:
        import shutil

        if shutil.which(command[0]) is None:
            pytest.fail(f"{command[0]} not found: apt-get install it (.ci/run does)")
        import tempfile

        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.output = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop(); read on failure
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            stdout=self.output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        self.wait(ready, timeout)

    def wait(self, path: str, timeout: float = 30.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.output.seek(0)
                raise RuntimeError(f"exited: {self.output.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{self.url}{path}", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.url}{path} did not answer in {timeout} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.output.close()


def pushgateway() -> Daemon:
    """Debian's prometheus-pushgateway on a free port, keeping nothing on disk."""
    port = free_port()
    command = [
        "prometheus-pushgateway",
        f"--web.listen-address=127.0.0.1:{port}",
        "--persistence.file=",  # Debian's default persists to /var/lib/prometheus
    ]
    return Daemon(command, "/-/ready", port)


#: Full MLflow, for its server, in an environment of its own (``make test`` installs it from
#: requirements-mlflow.lock): the project itself needs only mlflow-skinny.
MLFLOW = Path(__file__).parents[1] / ".venv-mlflow" / "bin" / "mlflow"


#: The admin of a locked tracking server (MLflow's ``basic-auth`` app): who creates its users.
ADMIN = ("admin", "rehearsal-admin-password")


def mlflow_server(folder: Path, backend: str, *, locked: bool = False) -> Daemon:
    """A real ``mlflow server`` on a free port: its backend store at the SQLAlchemy URL
    ``backend`` (PostgreSQL in the tests, as in the cloud) and proxied artifacts (served over
    HTTP, ``--serve-artifacts``) in ``folder``. ``locked``: MLflow's ``basic-auth`` app, its
    users in ``folder/basic_auth.db``, :data:`ADMIN` its admin; a stranger may do nothing, an
    account read everything and change only what it was granted (``default_permission =
    READ``)."""
    if not MLFLOW.is_file():
        pytest.fail(f"{MLFLOW} not found: `make test` installs full MLflow there")
    port = free_port()
    command = [
        str(MLFLOW),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "2",
        "--backend-store-uri",
        backend,
        "--serve-artifacts",
        "--artifacts-destination",
        str(folder / "artifacts"),
    ]
    # no job runner: its seven consumers (MLflow's GenAI jobs) would start and poll for nothing
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    if locked:
        config = folder / "basic_auth.ini"
        config.write_text(
            "[mlflow]\ndefault_permission = READ\n"
            f"database_uri = sqlite:///{folder / 'basic_auth.db'}\n"
            f"admin_username = {ADMIN[0]}\nadmin_password = {ADMIN[1]}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # a password checked once per 5 min and worker, not per request (~280 ms of CPU)
            "auth_cache_ttl_seconds = 300\n"
        )
        command += ["--app-name", "basic-auth"]
        env |= {
            "MLFLOW_AUTH_CONFIG_PATH": str(config),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": os.urandom(16).hex(),
        }
    return Daemon(command, "/health", port, cwd=folder, timeout=120.0, env=env)


#: The locked registry's accounts: the workflows' (training, deploys) and the monitoring's,
#: which may read the registry and record its checks' runs, never move a version.
WORKFLOW = ("workflow", "rehearsal-workflow-password")
MONITORING = ("monitoring", "rehearsal-monitoring-password")


def lock_registry(url: str) -> None:
    """What the admin of a new locked registry does once: the two accounts, each granted what
    it may change on every experiment, registered model and version (the moves' journal records
    included); every account reads everything, strangers nothing."""
    import httpx

    with httpx.Client(base_url=f"{url}/api", auth=ADMIN, timeout=30) as api:
        for user, password in (WORKFLOW, MONITORING):
            account = {"username": user, "password": password}
            api.post("/2.0/mlflow/users/create", json=account).raise_for_status()
        for user, kind, permission in (
            (WORKFLOW[0], "experiment", "MANAGE"),
            (WORKFLOW[0], "registered_model", "MANAGE"),
            (WORKFLOW[0], "registered_model_version", "MANAGE"),
            (MONITORING[0], "experiment", "EDIT"),  # its checks' runs
        ):
            grant = {"username": user, "resource_type": kind, "resource_id": "*"}
            granted = api.post(
                "/3.0/mlflow/users/permissions/grant", json={**grant, "permission": permission}
            )
            granted.raise_for_status()


def scrape(url: str) -> dict[str, float]:
    """A Prometheus exposition as ``{'name{labels}': value}``."""
    import httpx

    found = {}
    for line in httpx.get(url, timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


def eventually(
    condition: Callable[[], T],
    timeout: float = 30.0,
    ignoring: tuple[type[Exception], ...] = (),
) -> T:
    """The first true value of ``condition``, polled every 0.1 s (an exception in ``ignoring``
    counts as not yet); fail past ``timeout`` [s]."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = condition()
        except ignoring:
            found = None
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"condition not met in {timeout:g} s")


def wait_for_more(items: Sized, count: int, timeout: float = 60.0) -> None:
    """Wait until ``items`` (a list other threads append to) holds ``count`` more entries than
    now; fail past ``timeout`` [s]."""
    target, deadline = len(items) + count, time.monotonic() + timeout
    while len(items) < target:
        assert time.monotonic() < deadline, f"{len(items)} entries, waited for {target}"
        time.sleep(0.05)


@contextlib.contextmanager
def in_thread(server: ServerT) -> Iterator[ServerT]:
    """Serve ``server`` from a thread, and stop it at once when the block ends."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class FailingProxy(ThreadingHTTPServer):
    """An HTTP proxy on 127.0.0.1 in front of ``upstream`` that goes down mid-command: it
    forwards the first request whose method and path (``"POST /api/…"``) contain ``after``, then
    drops that connection and every later one unanswered (the upstream did the work; the client
    never hears of it)."""

    def __init__(self, upstream: str, after: str) -> None:
        super().__init__(("127.0.0.1", free_port()), _Forward)
        self.upstream, self.after, self.down = upstream, after, False
        self.url = f"http://127.0.0.1:{self.server_port}"


class _Forward(BaseHTTPRequestHandler):
    server: FailingProxy

    def _forward(self) -> None:
        import httpx

        self.close_connection = True
        if self.server.down:
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        skip = {"host", "content-length", "connection", "accept-encoding"}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        url = self.server.upstream + self.path
        answer = httpx.request(self.command, url, content=body, headers=headers, timeout=120)
        if self.server.after in f"{self.command} {self.path}":
            self.server.down = True
            return
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward  # noqa: N815 - http.server names

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        """Quiet."""


class SlackReceiver(BaseHTTPRequestHandler):
    """Takes Slack incoming-webhook posts as Slack does: JSON in, ``ok`` out."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def slack_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local Slack webhook: its URL, and the messages it received."""
    SlackReceiver.received = []
    with in_thread(ThreadingHTTPServer(("127.0.0.1", 0), SlackReceiver)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/T/B/X", SlackReceiver.received
