"""Benchmark: the prediction service under bounded load from wrk, all in one run.

One uvicorn worker, 32 connections, 127.0.0.1. Measures start-up to ready, then ``/health``
(the framework's own ceiling), ``/predict`` (the fast path), and two anchors serving the same
model: the naive approach (a scikit-learn pipeline on a one-row DataFrame per request, in
``bench/naive_app.py``) and MLflow's own scoring server (``mlflow models serve --env-manager
local``, one worker, on the model as the registry stores it: an MLflow Model); it prints
throughput ratios, latency percentiles and each server's cold start. ``/health`` and
``/predict`` are measured in alternating rounds on the same server, so that a slow spell of the
machine hits both alike; the ratio is the median of the rounds' ratios, p99 the worst round's.
With ``--pin`` the servers run on CPU 0 and wrk on CPU 1 (``taskset``): on two cores, an
unpinned load generator takes CPU from the server it measures, and the numbers swing with
the scheduler.

    .venv/bin/python bench/serving.py --model DIR [--seconds 4] [--rounds 3] [--warmup 2] [--pin]
        [--connections 32] [--no-naive] [--no-mlflow]
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
    command: list[str], port: int, env: dict[str, str], ready: str = "/ready"
) -> tuple[subprocess.Popen[bytes], float]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while time.perf_counter() - start < 60:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{ready}", timeout=1).status_code == 200:
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


def _anchor(
    args: argparse.Namespace,
    command: list[str],
    env: dict[str, str],
    script: Path,
    load_cpu: int | None,
    ready: str = "/ready",
    path: str = "/predict",
) -> tuple[dict[str, float], float]:
    """Another server of the same model under the same load: its numbers and its cold start
    (process start to ready) [s]. ``command`` takes the port as ``{port}``."""
    port = _port()
    server, startup = _start([c.format(port=port) for c in command], port, env, ready)
    c = args.connections
    try:
        if args.warmup:
            _wrk(f"http://127.0.0.1:{port}{path}", args.warmup, script, load_cpu, c)
        return _wrk(
            f"http://127.0.0.1:{port}{path}", args.seconds * args.rounds, script, load_cpu, c
        ), startup
    finally:
        server.terminate()
        server.wait(timeout=20)


def _naive_command() -> list[str]:
    """The naive approach: bench/naive_app.py."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "naive_app:create",
        "--port",
        "{port}",
        "--log-level",
        "warning",
        "--no-access-log",
        "--app-dir",
        str(Path(__file__).parent),
    ]


def _mlflow_model(model: Path, tmp: Path) -> Path:
    """``model`` as the registry stores it: an MLflow Model (a copy with the MLflow files added
    when it was exported without them)."""
    from conforto._tracking.mlflow_model import MLMODEL, write_mlflow_model

    if (model / MLMODEL).is_file():
        return model
    copy = tmp / "mlflow-model"
    write_mlflow_model(copy)
    for file in model.iterdir():
        shutil.copy2(file, copy / file.name)
    return copy


def _mlflow_command(model: Path) -> list[str]:
    """MLflow's own scoring server (``mlflow models serve``, one worker, this environment)."""
    return [
        *(sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model)),
        *("--env-manager", "local", "--workers", "1", "--host", "127.0.0.1", "--port", "{port}"),
    ]


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
    parser.add_argument(
        "--no-mlflow", action="store_true", help="skip `mlflow models serve` on the same model"
    )
    args = parser.parse_args()
    c = args.connections
    server_cpu, load_cpu = (0, 1) if args.pin else (None, None)
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        script, records = Path(tmp) / "post.lua", Path(tmp) / "records.lua"
        for lua, body in ((script, OBSERVATION), (records, {"dataframe_records": [OBSERVATION]})):
            lua.write_text(
                'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = '{json.dumps(body)}'\n"
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
        anchors: dict[str, tuple[dict[str, float], float]] = {}
        if not args.no_naive:
            naive_env = {**env, "NAIVE_MODEL": str(args.model)}
            command = _on(server_cpu, _naive_command())
            anchors["naive: sklearn+pandas"] = _anchor(args, command, naive_env, script, load_cpu)
        if not args.no_mlflow:
            command = _on(server_cpu, _mlflow_command(_mlflow_model(args.model, Path(tmp))))
            bin_dir = str(Path(sys.executable).parent)  # it starts `uvicorn` from the PATH
            mlflow_env = {**env, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
            anchors["mlflow models serve"] = _anchor(
                args, command, mlflow_env, records, load_cpu, "/ping", "/invocations"
            )
    print(f"start-up to ready: conforto {startup:.2f} s", end="")
    print("".join(f"; {name} {cold:.2f} s" for name, (_, cold) in anchors.items()))
    print(f"{'endpoint':36s} {'req/s':>8s} {'p50 ms':>7s} {'p99 ms':>7s} {'non-2xx':>8s}")
    health, predict = (_combine([r[i] for r in rounds]) for i in (0, 1))
    table = [("GET /health (framework ceiling)", health), ("POST /predict (conforto)", predict)]
    table += [(f"POST ({name})", result) for name, (result, _) in anchors.items()]
    for name, r in table:
        print(
            f"{name:36s} {r['rps']:8.0f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} {r['errors']:8.0f}"
        )
    ratios = [p["rps"] / h["rps"] for h, p in rounds]
    versus = "".join(
        f"; conforto vs {name.split(':')[0]}: {predict['rps'] / result['rps']:.1f}x"
        for name, (result, _) in anchors.items()
    )
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
