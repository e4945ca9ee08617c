"""Benchmark: the prediction service under bounded load from wrk, all in one run.

One uvicorn worker, 32 connections, 127.0.0.1. Measures start-up to ready, then ``/health``
(the framework's own ceiling), ``/predict`` (the fast path) and the naive approach (a
scikit-learn pipeline on a one-row DataFrame per request, in ``bench/naive_app.py``), and prints
throughput ratios and latency percentiles. ``/health`` and ``/predict`` are measured in
alternating rounds on the same server, so that a slow spell of the machine hits both alike; the
ratio is the median of the rounds' ratios, p99 the worst round's. With ``--pin`` the server
runs on CPU 0 and wrk on CPU 1 (``taskset``): on two cores, an unpinned load generator takes
CPU from the server it measures, and the numbers swing with the scheduler.

    .venv/bin/python bench/serving.py --model DIR [--seconds 4] [--rounds 3] [--warmup 2] [--pin]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

OBSERVATION = {
    "ta": 24.5,
    "tr": 25.0,
    "rh": 55.0,
    "vel": 0.15,
    "met": 1.1,
    "clo": 0.6,
    "t_mot_isd": 22.0,
    "season": "summer",
    "cooling_type": "air conditioned",
}


def _port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(
    command: list[str], port: int, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], float]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while time.perf_counter() - start < 60:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc, time.perf_counter() - start
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError(f"{command} did not become ready")


def _on(cpu: int | None, command: list[str]) -> list[str]:
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


def _wrk(
    url: str, seconds: int, script: Path | None, cpu: int | None, connections: int = 32
) -> dict[str, float]:
    command = _on(cpu, ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url])
    if script is not None:
        command[-1:-1] = ["-s", str(script)]
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(p: str) -> float:
        value, unit = re.search(rf"{p}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    return {
        "rps": rps,
        "p50_ms": pct("50"),
        "p99_ms": pct("99"),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def _combine(runs: list[dict[str, float]]) -> dict[str, float]:
    """Rounds of equal length as one: mean throughput, median p50, worst p99, all errors."""
    return {
        "rps": statistics.mean(r["rps"] for r in runs),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": max(r["p99_ms"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
    }


def _backlog(url: str) -> float:
    """Bytes of the prediction log's spool not yet stored, from the service's own metrics
    (read from the writer once a second)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = re.search(r"^conforto_prediction_log_spool_bytes(?:\{[^}]*\})? ([\d.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def _drain(url: str, limit: float = 120.0) -> tuple[float, float]:
    """The log's backlog when the load stops, and the seconds until it is written."""
    start = time.perf_counter()
    waiting = left = _backlog(url)
    while left and time.perf_counter() - start < limit:
        time.sleep(0.1)
        left = _backlog(url)
    return waiting, time.perf_counter() - start


def _naive(
    args: argparse.Namespace,
    env: dict[str, str],
    script: Path,
    server_cpu: int | None,
    load_cpu: int | None,
) -> dict[str, float]:
    """The naive approach (bench/naive_app.py) under the same load."""
    port = _port()
    naive, _ = _start(
        _on(
            server_cpu,
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "naive_app:create",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
                "--app-dir",
                str(Path(__file__).parent),
            ],
        ),
        port,
        {**env, "NAIVE_MODEL": str(args.model)},
    )
    c = args.connections
    try:
        if args.warmup:
            _wrk(f"http://127.0.0.1:{port}/predict", args.warmup, script, load_cpu, c)
        return _wrk(
            f"http://127.0.0.1:{port}/predict", args.seconds * args.rounds, script, load_cpu, c
        )
    finally:
        naive.terminate()
        naive.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--seconds", type=int, default=4, help="length of one round [s]")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of /health, /predict")
    parser.add_argument(
        "--warmup", type=int, default=2, help="unmeasured load on each endpoint first [s]"
    )
    parser.add_argument("--pin", action="store_true", help="server on CPU 0, wrk on CPU 1")
    parser.add_argument("--connections", type=int, default=32, help="wrk's connections")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    args = parser.parse_args()
    c = args.connections
    server_cpu, load_cpu = (0, 1) if args.pin else (None, None)
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = '{json.dumps(OBSERVATION)}'\n"
        )
        port = _port()
        env = {"CONFORTO_HOME": tmp}
        fast, startup = _start(
            _on(
                server_cpu,
                [
                    sys.executable,
                    "-m",
                    "conforto",
                    "serve",
                    "--model",
                    str(args.model),
                    "--port",
                    str(port),
                ],
            ),
            port,
            env,
        )
        try:
            if args.warmup:
                _wrk(f"http://127.0.0.1:{port}/health", args.warmup, None, load_cpu, c)
                _wrk(f"http://127.0.0.1:{port}/predict", args.warmup, script, load_cpu, c)
            rounds = []
            for _ in range(args.rounds):
                health = _wrk(f"http://127.0.0.1:{port}/health", args.seconds, None, load_cpu, c)
                predict = _wrk(
                    f"http://127.0.0.1:{port}/predict", args.seconds, script, load_cpu, c
                )
                rounds.append((health, predict))
                backlog, drained = _drain(f"http://127.0.0.1:{port}")
        finally:
            fast.terminate()
            fast.wait(timeout=20)
        slow = None if args.no_naive else _naive(args, env, script, server_cpu, load_cpu)
    print(f"start-up to ready: {startup:.2f} s")
    print(f"{'endpoint':36s} {'req/s':>8s} {'p50 ms':>7s} {'p99 ms':>7s} {'non-2xx':>8s}")
    health, predict = (_combine([r[i] for r in rounds]) for i in (0, 1))
    table = [("GET /health (framework ceiling)", health), ("POST /predict (conforto)", predict)]
    if slow is not None:
        table.append(("POST /predict (naive: sklearn+pandas)", slow))
    for name, r in table:
        print(
            f"{name:36s} {r['rps']:8.0f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} {r['errors']:8.0f}"
        )
    ratios = [p["rps"] / h["rps"] for h, p in rounds]
    versus = f"; conforto vs naive: {predict['rps'] / slow['rps']:.1f}x" if slow else ""
    print(
        f"/predict vs /health: {statistics.median(ratios):.0%} "
        f"(rounds: {', '.join(f'{r:.0%}' for r in ratios)}){versus}"
    )
    print(
        f"prediction log, last round: {backlog:.0f} bytes in the spool when the load stopped, "
        f"stored {drained:.1f} s later"
    )


if __name__ == "__main__":
    main()
