"""Benchmark: what the occupant-response heads cost the service, in alternating runs with
and without them.

The same model is served twice: as it is and as a copy without its heads (``dissatisfied``,
``unacceptable`` and ``preference`` answer null), as training makes it from data without the
occupants' answers. ``bench/serving.py`` measures each, alternating which goes first, and the
table compares ``/predict ÷ /health`` of the runs.

    .venv/bin/python bench/heads_cost.py --model DIR [--runs 3] [--pin] [--connections 64]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from conforto._model.artifact import read_manifest, save_manifest
from conforto._model.heads import HEADS, SPECS

SERVING = Path(__file__).with_name("serving.py")
#: The heads' files.
HEAD_FILES = (HEADS, *(spec.booster_file for spec in SPECS))


def without_heads(model: Path, folder: Path) -> Path:
    """A copy of ``model`` without its heads."""
    copy = folder / "without-heads"
    shutil.copytree(model, copy)
    for name in HEAD_FILES:
        (copy / name).unlink()
    save_manifest(copy, read_manifest(copy))
    return copy


def measure(model: Path, options: list[str]) -> dict[str, float]:
    """One ``bench/serving.py`` run: req/s of both endpoints, the ratio and p99."""
    out = subprocess.run(
        [
            sys.executable,
            str(SERVING),
            "--model",
            str(model),
            "--no-naive",
            "--no-mlflow",
            *options,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    health = re.search(r"^GET /health.*?\s+(\d+)\s+[\d.]+\s+[\d.]+", out, re.M)
    predict = re.search(r"^POST /predict \(conforto\)\s+(\d+)\s+([\d.]+)\s+([\d.]+)", out, re.M)
    ratio = re.search(r"^/predict vs /health: (\d+)%", out, re.M)
    if not (health and predict and ratio):
        raise SystemExit(f"unexpected output of bench/serving.py:\n{out}")
    return {
        "health": float(health.group(1)),
        "predict": float(predict.group(1)),
        "ratio": float(ratio.group(1)),
        "p50": float(predict.group(2)),
        "p99": float(predict.group(3)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a model with heads")
    parser.add_argument("--runs", type=int, default=3, help="runs of each")
    parser.add_argument("--pin", action="store_true", help="server on CPU 0, wrk on CPU 1")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    missing = [name for name in HEAD_FILES if not (args.model / name).is_file()]
    if missing:
        sys.exit(f"{args.model} has no {', '.join(missing)}: train it with this conforto")
    options = ["--connections", str(args.connections), *(["--pin"] if args.pin else [])]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = {
            "with heads": args.model,
            "without heads": without_heads(args.model, Path(tmp)),
        }
        for run in range(args.runs):
            order = list(models) if run % 2 == 0 else list(reversed(models))
            for label in order:
                rows.append((f"{label} {run + 1}", measure(models[label], options)))
                print(rows[-1][0], rows[-1][1], flush=True)
    print("\n| run | `GET /health` req/s | `POST /predict` req/s | ratio | p50 / p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, r in rows:
        print(
            f"| {name} | {r['health']:,.0f} | {r['predict']:,.0f} | {r['ratio']:.0f} % "
            f"| {r['p50']:.1f} / {r['p99']:.1f} |"
        )


if __name__ == "__main__":
    main()
