"""Benchmark: this checkout's service against another revision's, on the same model, in one run.

The other revision is checked out in a temporary git worktree and served from there (its
``src/`` first on ``PYTHONPATH``); both services run side by side (one uvicorn worker each,
on CPU 0 with ``--pin``), and wrk (on CPU 1) loads them in alternating rounds: ``/predict``
(one observation) and ``/predict/batch`` (64), so a slow spell of the machine hits both alike.
Then batch prediction (``predict_file``, CSV → CSV, ``--rows`` rows of the dev data resampled)
with each tree's code, in alternating rounds too. Prints each one's throughput for both, and
the ratio this/base (the median of the rounds' ratios).

    .venv/bin/python bench/revisions.py --model DIR [--base REV] [--seconds 4] [--rounds 3] [--pin]
        [--rows 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from serving import OBSERVATION, _combine, _on, _port, _start, _wrk

REPO = Path(__file__).resolve().parents[1]
BATCH = 64
#: Batch prediction of a CSV with the code first on ``PYTHONPATH``: prints its seconds.
SCORE_FILE = """
import sys, time
from pathlib import Path
from conforto._model.artifact import load_model
from conforto._model.predict import predict_file
model = load_model(sys.argv[1])
start = time.perf_counter()
predict_file(model, Path(sys.argv[2]), Path(sys.argv[3]))
print(time.perf_counter() - start)
"""


def _lua(path: Path, body: object) -> Path:
    path.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = '{json.dumps(body)}'\n"
    )
    return path


def _serve(
    src: Path, model: Path, home: Path, cpu: int | None
) -> tuple[subprocess.Popen[bytes], int]:
    """A service of ``model`` running the code in ``src``; its port."""
    port = _port()
    command = [
        sys.executable,
        "-m",
        "conforto",
        "serve",
        "--model",
        str(model),
        "--port",
        str(port),
    ]
    env = {"CONFORTO_HOME": str(home), "PYTHONPATH": str(src)}
    server, _ = _start(_on(cpu, command), port, env)
    return server, port


def _input(rows: int, out: Path) -> Path:
    """``rows`` rows of the dev data's measurements, resampled, as a CSV."""
    import pandas as pd

    from conforto._data.download import resolve_sources
    from conforto._settings import get_settings

    measurements, _ = resolve_sources(get_settings())
    frame = pd.read_csv(measurements, low_memory=False)
    frame.sample(rows, replace=True, random_state=0).to_csv(out, index=False)
    return out


def _score_file(src: Path, model: Path, data: Path, out: Path, cpu: int | None) -> float:
    """Seconds the code in ``src`` takes to score ``data`` into ``out`` (loading aside)."""
    command = _on(cpu, [sys.executable, "-c", SCORE_FILE, str(model), str(data), str(out)])
    done = subprocess.run(
        command, env={**os.environ, "PYTHONPATH": str(src)}, capture_output=True, check=True
    )
    return float(done.stdout.decode().split()[-1])


def _load_rounds(
    args: argparse.Namespace, trees: dict[str, Path], folder: Path, cpus: tuple[int | None, ...]
) -> dict[tuple[str, str], list[dict[str, float]]]:
    """Each endpoint's wrk rounds against each tree's service, alternating (warm-up aside)."""
    scripts = {
        "/predict": _lua(folder / "one.lua", OBSERVATION),
        "/predict/batch": _lua(folder / "batch.lua", {"observations": [OBSERVATION] * BATCH}),
    }
    server_cpu, load_cpu = cpus
    servers = {}
    rounds: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        for name, src in trees.items():
            (folder / f"home-{name}").mkdir()
            servers[name] = _serve(src, args.model, folder / f"home-{name}", server_cpu)
        lengths = [args.warmup] * bool(args.warmup) + [args.seconds] * args.rounds
        for i, seconds in enumerate(lengths):
            for path, script in scripts.items():
                for name, (_, port) in servers.items():
                    url = f"http://127.0.0.1:{port}{path}"
                    run = _wrk(url, seconds, script, load_cpu, args.connections)
                    if i or not args.warmup:
                        rounds.setdefault((path, name), []).append(run)
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(timeout=20)
    return rounds


def _ratios(base: list[float], this: list[float]) -> str:
    ratios = [t / b for b, t in zip(base, this, strict=True)]
    rounds = ", ".join(f"{r:.2f}" for r in ratios)
    return f"this/base throughput {statistics.median(ratios):.2f}x (rounds: {rounds})"


def _report(
    base: str,
    rounds: dict[tuple[str, str], list[dict[str, float]]],
    scored: dict[str, list[float]],
) -> None:
    print(f"base {base} against this checkout")
    print(f"{'':16s} {'tree':5s} {'req/s':>8s} {'p50 ms':>7s} {'p99 ms':>7s} {'non-2xx':>8s}")
    for path in dict.fromkeys(path for path, _ in rounds):
        for name in ("base", "this"):
            r = _combine(rounds[(path, name)])
            print(
                f"{path:16s} {name:5s} {r['rps']:8.0f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} "
                f"{r['errors']:8.0f}"
            )
        rps = {name: [r["rps"] for r in rounds[(path, name)]] for name in ("base", "this")}
        print(f"{path:16s} {_ratios(rps['base'], rps['this'])}")
    for name, speeds in scored.items():
        print(f"{'batch CSV→CSV':16s} {name:5s} {statistics.median(speeds):8,.0f} rows/s")
    print(f"{'batch CSV→CSV':16s} {_ratios(scored['base'], scored['this'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--base", default="HEAD", help="the revision to compare with")
    parser.add_argument("--seconds", type=int, default=4, help="length of one round [s]")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each measurement")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured load first [s]")
    parser.add_argument("--pin", action="store_true", help="servers on CPU 0, wrk on CPU 1")
    parser.add_argument("--connections", type=int, default=32, help="wrk's connections")
    parser.add_argument("--rows", type=int, default=200_000, help="rows of batch prediction")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    cpus = (0, 1) if args.pin else (None, None)
    base = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", args.base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tree = folder / "tree"
        git = ["git", "-C", str(REPO), "worktree"]
        subprocess.run([*git, "add", "--detach", str(tree), base], check=True, capture_output=True)
        trees = {"base": tree / "src", "this": REPO / "src"}
        try:
            data = _input(args.rows, folder / "input.csv")
            scored: dict[str, list[float]] = {name: [] for name in trees}
            for _ in range(args.rounds):
                for name, src in trees.items():
                    seconds = _score_file(src, args.model, data, folder / "out.csv", cpus[0])
                    scored[name].append(args.rows / seconds)
            rounds = _load_rounds(args, trees, folder, cpus)
        finally:
            subprocess.run([*git, "remove", "--force", str(tree)], check=False, capture_output=True)
    _report(base, rounds, scored)


if __name__ == "__main__":
    main()
