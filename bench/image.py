"""Benchmark: the image's cold start and size (``make test-image`` builds it first).

For ``--runs`` containers of the image (model baked in): the time from ``podman run`` to the
first ``/ready`` 200 seen from the host, and from the container's process start (podman's
``StartedAt``) to that answer; against the same service started as a plain process on the host
from the project's own environment (the baseline, measured in the same run). Then the image's
size.

    .venv/bin/python bench/image.py [--image localhost/conforto:test] [--model DIR] [--runs 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

PODMAN = ["podman", "--storage-driver=overlay", "--runtime", "runc"]
LIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
READ_ONLY = ["--read-only", "--tmpfs", "/tmp"]  # noqa: S108 - the container's own /tmp


def _inspect(*args: str) -> dict[str, Any]:
    done = subprocess.run([*PODMAN, *args], capture_output=True, text=True, check=True)
    found: dict[str, Any] = json.loads(done.stdout)[0]
    return found


def _port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(url: str, timeout: float = 60.0) -> float:
    """When ``url``/ready first answers 200 (``time.time()``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=0.5).status_code == 200:
                return time.time()
        except httpx.TransportError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} never became ready")


def container(image: str) -> tuple[float, float]:
    """``podman run`` → ready, and process start → ready [s]."""
    port = _port()
    start = time.time()
    command = [*PODMAN, "run", "--detach", *READ_ONLY, *LIMITS, "-p", f"127.0.0.1:{port}:8080"]
    started_container = subprocess.run(
        [*command, image], capture_output=True, text=True, check=True
    )
    cid = started_container.stdout.strip()
    try:
        ready = _ready(f"http://127.0.0.1:{port}")
        state = _inspect("inspect", cid)["State"]
        started = dt.datetime.fromisoformat(state["StartedAt"][:26].rstrip("Z")).replace(
            tzinfo=dt.UTC
        )
        return ready - start, ready - started.timestamp()
    finally:
        subprocess.run([*PODMAN, "rm", "--force", "--time", "1", cid], capture_output=True)


def host(model: Path) -> float:
    """The same service as a process of the project's own environment: start → ready [s]."""
    port = _port()
    start = time.time()
    process = subprocess.Popen(
        [sys.executable, "-m", "conforto", "serve", "--model", str(model), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        return _ready(f"http://127.0.0.1:{port}") - start
    finally:
        process.terminate()
        process.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="localhost/conforto:test")
    parser.add_argument("--model", type=Path, help="the baked model, for the host baseline")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = [container(args.image) for _ in range(args.runs)]
    print(f"{'':34s} {'median':>7s} {'max':>7s}")
    for name, values in (
        ("podman run → /ready [s]", [r[0] for r in runs]),
        ("process start → /ready [s]", [r[1] for r in runs]),
    ):
        print(f"{name:34s} {statistics.median(values):7.2f} {max(values):7.2f}")
    if args.model:
        baseline = [host(args.model) for _ in range(args.runs)]
        print(
            f"{'host process, start → /ready [s]':34s} {statistics.median(baseline):7.2f} "
            f"{max(baseline):7.2f}"
        )
    size = _inspect("image", "inspect", args.image)["Size"]
    print(f"image size: {size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
