"""Benchmark: what a shadow challenger costs ``/predict``, all in one run.

Two services of the same production model, one uvicorn worker each: one alone, one with a
shadow challenger (``--challenger``, by default the same model: the same work as any
challenger of its kind). wrk loads them in alternating rounds (32 connections, 127.0.0.1), so
that a slow spell of the machine hits both alike; the throughput ratio is the median of the
rounds' ratios, the p99 ratio the worst round's p99 with the shadow over the worst without.
After the load, the shadow's count says how many predictions it scored and how many it skipped
(it skips only what it cannot keep up with); its automatic stop is off. A challenger with the
production model's features scores production's matrix; ``--challenger`` with other features
(another training's categories) measures a shadow that encodes the rows itself. Targets
(issue #36): throughput ≥ 80 % of the service alone, p99 ≤ 1.3×. With ``--pin`` the servers
run on CPU 0 and wrk on CPU 1.

    .venv/bin/python bench/shadow.py --model DIR [--challenger DIR] [--seconds 4] [--rounds 6]
        [--warmup 2] [--pin]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from serving import OBSERVATION, _on, _port, _start, _wrk

TOKEN = "bench"  # noqa: S105 - the benchmark's own token
#: The benchmark measures what a shadow costs, whatever it answers: no automatic stop.
NO_STOP = {
    f"CONFORTO_SERVE__CHALLENGER__{name}": value
    for name, value in (("MAX_DISAGREEMENT", "1"), ("MAX_ERROR_RATE", "1"), ("MAX_P99_MS", "1e9"))
}


def _serve(model: Path, challenger: Path | None, home: Path, cpu: int | None) -> tuple[str, object]:
    port = _port()
    command = [sys.executable, "-m", "conforto", "serve", "--model", str(model)]
    command += ["--port", str(port)]
    if challenger is not None:
        command += ["--challenger", str(challenger)]
    env = {"CONFORTO_HOME": str(home), "CONFORTO_SERVE__ADMIN_TOKEN": TOKEN, **NO_STOP}
    process, _ = _start(_on(cpu, command), port, env)
    return f"http://127.0.0.1:{port}", process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--challenger", type=Path, help="shadow model (default: --model)")
    parser.add_argument("--seconds", type=int, default=4, help="length of one round [s]")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of each service")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured load first [s]")
    parser.add_argument("--pin", action="store_true", help="servers on CPU 0, wrk on CPU 1")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    server_cpu, load_cpu = (0, 1) if args.pin else (None, None)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = '{json.dumps(OBSERVATION)}'\n"
        )
        alone, first = _serve(args.model, None, Path(tmp) / "alone", server_cpu)
        shadowed, second = _serve(
            args.model, args.challenger or args.model, Path(tmp) / "shadow", server_cpu
        )
        try:
            for url in (alone, shadowed):
                if args.warmup:
                    _wrk(f"{url}/predict", args.warmup, script, load_cpu)
            rounds = [
                tuple(
                    _wrk(f"{url}/predict", args.seconds, script, load_cpu)
                    for url in (alone, shadowed)
                )
                for _ in range(args.rounds)
            ]
            status = httpx.get(
                f"{shadowed}/admin/challenger", headers={"Authorization": f"Bearer {TOKEN}"}
            ).json()
        finally:
            for process in (first, second):
                process.terminate()  # type: ignore[attr-defined]
                process.wait(timeout=20)  # type: ignore[attr-defined]
    print(f"{'round':>5s} {'alone req/s':>12s} {'shadow req/s':>13s} {'ratio':>6s}", end="")
    print(f" {'p99 alone':>10s} {'p99 shadow':>11s}")
    for i, (a, s) in enumerate(rounds, 1):
        print(
            f"{i:5d} {a['rps']:12.0f} {s['rps']:13.0f} {s['rps'] / a['rps']:6.0%} "
            f"{a['p99_ms']:10.2f} {s['p99_ms']:11.2f}"
        )
    throughput = statistics.median(s["rps"] / a["rps"] for a, s in rounds)
    p99 = max(s["p99_ms"] for _, s in rounds) / max(a["p99_ms"] for a, _ in rounds)
    errors = sum(a["errors"] + s["errors"] for a, s in rounds)
    print(
        f"with a shadow: {throughput:.0%} of the throughput alone (target >= 80 %), "
        f"p99 {p99:.2f}x (target <= 1.3x); non-2xx {errors:.0f}"
    )
    print(
        f"the shadow scored {status['shadowed']:,} predictions, skipped {status['skipped']:,} "
        f"(state {status['state']})"
    )


if __name__ == "__main__":
    main()
