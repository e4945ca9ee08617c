"""Benchmark: how long the command line takes to answer, warm (median of five runs each).

``conforto --help`` against the interpreter starting and exiting (``python -c pass``), and
``conforto model list --json`` on an embedded registry holding two versions, from its index
against the same command reading the registry through MLflow (the index removed before each
run), in one run.

    .venv/bin/python bench/cli.py [--model DIR] [--runs 5]

Without ``--model``, a small model of synthetic votes is trained first (a few seconds).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFORTO = [sys.executable, "-m", "conforto"]


def _median(command: list[str], env: dict[str, str], runs: int, before: object = None) -> float:
    """The median wall time of ``command`` [s] over ``runs`` runs, after one warm-up run;
    ``before`` (a callable) runs untimed before each."""
    times = []
    for _ in range(runs + 1):
        if callable(before):
            before()
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def _small_model(folder: Path) -> Path:
    import numpy as np
    import pandas as pd

    from conforto._data.load import load_dataset
    from conforto._training.save import write_model
    from conforto._training.train import TrainConfig, train_model

    rng = np.random.default_rng(0)
    n = 600
    ta = rng.uniform(18, 32, n)
    measurements = pd.DataFrame(
        {
            "building_id": rng.integers(1, 11, n),
            "ta": ta,
            "rh": rng.uniform(30, 70, n),
            "vel": 0.1,
            "met": 1.1,
            "clo": 0.6,
            "thermal_sensation": np.clip(np.round((ta - 25) / 3 + rng.normal(0, 0.7, n)), -3, 3),
        }
    )
    metadata = pd.DataFrame({"building_id": range(1, 11), "cooling_type": "air conditioned"})
    m, d = folder / "m.csv", folder / "d.csv"
    measurements.to_csv(m, index=False)
    metadata.to_csv(d, index=False)
    frame = load_dataset(m, d).frame
    config = TrainConfig(folds=2, search_trials=1, inner_folds=2, max_rounds=10)
    write_model(train_model(frame, config=config, progress=False), frame, folder / "model")
    return folder / "model"


def _variant(model: Path, out: Path) -> Path:
    """A copy of ``model`` that is another artifact: a note in its manifest."""
    from conforto._model.artifact import read_manifest, save_manifest

    shutil.copytree(model, out)
    manifest = read_manifest(out)
    seed = manifest.seed + 1  # another training, as far as the registry can tell
    changed = {"note": "the benchmark's second version", "seed": seed}
    save_manifest(
        out, manifest.model_copy(update={**changed, "config": {**manifest.config, "seed": seed}})
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a model directory (default: train one)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="conforto-bench-cli-"))
    env = {**os.environ, "CONFORTO_HOME": str(root / "home")}
    model = args.model or _small_model(root)
    second = _variant(model, root / "second")
    for command in (
        ["model", "register", str(model)],
        ["model", "register", str(second)],
        ["model", "promote", "1", "--force"],
    ):
        subprocess.run([*CONFORTO, *command], env=env, check=True, capture_output=True)
    index = root / "home" / "registry" / "versions.json"

    def drop_index() -> None:
        index.unlink(missing_ok=True)

    rows = {
        "python -c pass (baseline)": _median([sys.executable, "-c", "pass"], env, args.runs),
        "conforto --help": _median([*CONFORTO, "--help"], env, args.runs),
        "conforto model list --json, through MLflow (baseline)": _median(
            [*CONFORTO, "model", "list", "--json"], env, args.runs, drop_index
        ),
        "conforto model list --json, from the index": _median(
            [*CONFORTO, "model", "list", "--json"], env, args.runs
        ),
    }
    print(f"median of {args.runs} warm runs, 2 cores")
    print(f"{'command':58s} {'seconds':>8s}")
    for name, seconds in rows.items():
        print(f"{name:58s} {seconds:8.2f}")
    mlflow, indexed = list(rows.values())[2:]
    print(f"model list from the index: {indexed / mlflow:.2f} x through MLflow")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
