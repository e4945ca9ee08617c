"""Benchmark: load + validate + physics features on the full data.

Prints each step's time and the ratio to a baseline measured in the same run: reading both
files with plain ``pandas.read_csv`` and joining them (the floor any loader pays).

    .venv/bin/python bench/data_stage.py [--measurements M --metadata D] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from conforto._data.download import resolve_sources
from conforto._data.load import load_dataset
from conforto._data.validation import validate_dataset
from conforto._physics.features import FAST_FEATURES, FEATURES, comfort_features
from conforto._settings import get_settings

if TYPE_CHECKING:
    from collections.abc import Callable


def _best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measurements", type=Path)
    parser.add_argument("--metadata", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    m, d = resolve_sources(get_settings(), args.measurements, args.metadata)

    def baseline() -> None:
        pd.read_csv(m, low_memory=False).merge(pd.read_csv(d), on="building_id", how="left")

    dataset = load_dataset(m, d)
    steps = {
        "baseline: read_csv + merge": baseline,
        "load (read, names, types, join)": lambda: load_dataset(m, d),
        "validate (pandera + quality)": lambda: validate_dataset(dataset),
        "features, per-request set": lambda: comfort_features(dataset.frame, FAST_FEATURES),
        "features, all (incl. SET, ASHRAE PMV)": lambda: comfort_features(dataset.frame, FEATURES),
    }
    times = {name: _best(fn, args.repeat) for name, fn in steps.items()}
    base = times["baseline: read_csv + merge"]
    rows = len(dataset.frame)
    print(f"rows: {rows}, best of {args.repeat}")
    print(f"{'step':40s} {'seconds':>8s} {'x baseline':>11s}")
    for name, seconds in times.items():
        print(f"{name:40s} {seconds:8.2f} {seconds / base:11.1f}")
    total = sum(v for k, v in times.items() if not k.startswith(("baseline", "features, per")))
    print(f"{'total load + validate + all features':40s} {total:8.2f} {total / base:11.1f}")
    print(
        f"per-row cost of the per-request features: "
        f"{1e6 * times['features, per-request set'] / rows:.1f} µs"
    )


if __name__ == "__main__":
    main()
