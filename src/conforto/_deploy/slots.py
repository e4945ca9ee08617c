"""The pieces of a local deploy: nginx in front, and the two slots (blue, green) behind it.

One nginx per environment listens on the environment's stable address (127.0.0.1) and proxies
to the active slot; switching slots rewrites its upstream and reloads it gracefully, so
requests already under way finish on the old slot. A slot is ``conforto serve --model DIR``
(or the image under podman) serving one fixed version, started detached, its pid and log under
``$CONFORTO_HOME/deploy/<environment>/``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from conforto._fileio import atomic_write_text
from conforto.errors import ConfigError

SLOTS = ("blue", "green")
#: Slots started by this process (a Popen dropped while its process runs warns).
_STARTED: list[subprocess.Popen[bytes]] = []

NGINX_CONF = """\
# written by conforto deploy: the {environment} environment on 127.0.0.1:{port}
daemon on;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    # no keep-alive towards clients: at a reload nginx closes idle keep-alive connections, and a
    # client that sent its next request on one just then would see it fail
    keepalive_timeout 0;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    include {root}/upstream.conf;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://conforto;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_next_upstream off;
        }}
    }}
}}
"""
UPSTREAM = """\
# the active slot: {slot}
upstream conforto {{
    server 127.0.0.1:{port};
    keepalive 16;
}}
add_header X-Conforto-Slot {slot} always;
"""


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def alive(pid: int | None) -> bool:
    """Whether a process runs (and is not a zombie)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    status = Path(f"/proc/{pid}/stat")
    return not (status.is_file() and status.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def read_pid(path: Path) -> int | None:
    """The pid in a pid file, or ``None``."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def terminate(pid: int | None, timeout: float) -> None:
    """SIGTERM (a graceful stop), then SIGKILL after ``timeout`` seconds."""
    if not alive(pid):
        return
    assert pid is not None  # noqa: S101 - alive() is False for None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


@dataclass
class Nginx:
    """The environment's nginx: its folder, port and config."""

    root: Path
    port: int
    environment: str

    @property
    def pid(self) -> int | None:
        """The master's pid, when it runs."""
        pid = read_pid(self.root / "nginx.pid")
        return pid if alive(pid) else None

    def _nginx(self, *args: str) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).is_file():
            raise ConfigError("nginx not found: apt-get install nginx (Debian's package).")
        done = subprocess.run(  # noqa: S603 - nginx with this environment's own config
            [binary, "-p", str(self.root), "-c", str(self.root / "nginx.conf"), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if done.returncode != 0:
            raise ConfigError(f"nginx {' '.join(args) or 'start'} failed: {done.stderr.strip()}")

    def route(self, slot: str, port: int) -> None:
        """Send the traffic to ``slot`` on ``port``: start nginx, or reload it gracefully."""
        for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.root / "tmp" / folder).mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.root / "upstream.conf", UPSTREAM.format(slot=slot, port=port))
        config = NGINX_CONF.format(root=self.root, port=self.port, environment=self.environment)
        atomic_write_text(self.root / "nginx.conf", config)
        self._nginx("-t", "-q")
        if self.pid is None:
            self._nginx()
        else:
            self._nginx("-s", "reload")

    def routed_to(self) -> str | None:
        """The slot answering through nginx now (its ``X-Conforto-Slot`` header), if any."""
        try:
            answer = httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2)
        except httpx.HTTPError:
            return None
        slot: str | None = answer.headers.get("x-conforto-slot")
        return slot

    def stop(self, timeout: float = 10.0) -> None:
        """Stop nginx (gracefully: requests under way finish)."""
        pid = self.pid
        if pid is not None:
            os.kill(pid, signal.SIGQUIT)
            deadline = time.monotonic() + timeout
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            terminate(pid, 1.0)


@dataclass
class Slot:
    """One slot: a service process (or container) serving one version on one port."""

    root: Path
    name: str

    @property
    def pid_file(self) -> Path:
        """The file holding the slot's process id."""
        return self.root / f"{self.name}.pid"

    @property
    def pid(self) -> int | None:
        """The serving process's pid, when it runs."""
        pid = read_pid(self.pid_file)
        return pid if alive(pid) else None

    def start(self, model_dir: Path, port: int, *, image: str | None = None) -> None:
        """Start serving ``model_dir`` on ``port``, detached; its log in ``<slot>.log``."""
        self.root.mkdir(parents=True, exist_ok=True)
        log = (self.root / f"{self.name}.log").open("ab")
        if image is None:
            command = [sys.executable, "-m", "conforto", "serve", "--model", str(model_dir)]
            command += ["--port", str(port)]
        else:
            command = [
                "podman",
                "--storage-driver=overlay",
                "--runtime",
                "runc",
                "run",
                "--rm",
                "--read-only",
                "--tmpfs=/tmp",  # the container's own, writable /tmp
                "--ulimit",
                "nofile=20000:20000",
                "--ulimit",
                "nproc=32768:32768",
                "-p",
                f"127.0.0.1:{port}:8080",
                "-v",
                f"{model_dir}:/model:ro",
                "-e",
                "CONFORTO_SERVE__MODEL_DIR=/model",
                image,
            ]
        env = {**os.environ, "CONFORTO_SERVE__POLL_SECONDS": "0"}  # one fixed version
        process = subprocess.Popen(  # noqa: S603 - this project's own command
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        _STARTED.append(process)  # outlives this command; kept referenced until it exits
        log.close()
        atomic_write_text(self.pid_file, str(process.pid))

    def wait_ready(self, port: int, timeout: float) -> str | None:
        """Wait until the slot answers ``/ready``; the reason it did not, or ``None``."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.pid is None:
                tail = (self.root / f"{self.name}.log").read_text(errors="replace")[-400:]
                return f"the {self.name} slot exited: {tail.strip().splitlines()[-1:]}"
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2)
                if answer.status_code == 200:
                    return None
                last = f"/ready answered {answer.status_code}: {answer.text[:200]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}"
            time.sleep(0.1)
        return f"the {self.name} slot was not ready in {timeout:.0f} s ({last})"

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the slot gracefully (its prediction log flushed), then forget its pid."""
        terminate(self.pid, timeout)
        self.pid_file.unlink(missing_ok=True)
