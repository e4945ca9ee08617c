"""Report: how well the model's probabilities estimate its own accuracy, on buildings it never saw.

On the building-grouped out-of-fold predictions of a model (its ``oof.parquet``): the accuracy
estimated without labels (``conforto.monitor.performance.expected_metrics``) against the
realised accuracy, overall and in every climate and cooling-type slice with at least 1,000
rows, with the realised 95 % bootstrap interval over buildings. Two estimates: from the
probabilities as they are (``raw``) and recalibrated per climate as the monitor reads them
(``conforto.confidence``; each fold's calibration fitted on the other folds). Targets: within
0.02 overall, inside the realised interval in every slice. ``--reshuffles K`` repeats the
cross-fitting of the calibration over K random partitions of the buildings into as many groups
as the model has folds (the model's predictions stay out of fold): how much the result owes to
one partition.

    .venv/bin/python bench/performance.py --model DIR [--reshuffles 4]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from conforto import oof
from conforto.confidence import cross_fitted
from conforto.metrics import bootstrap_interval, macro_f1, slice_positions
from conforto.monitor.performance import expected_metrics


def row(name: str, frame: pd.DataFrame, recalibrated: np.ndarray) -> dict[str, object]:
    y, decision = oof.labels(frame)
    low, high = bootstrap_interval(y, decision, frame["building_id"].to_numpy(np.int64), reps=1000)[
        "accuracy"
    ]
    out: dict[str, object] = {"slice": name, "rows": len(frame)}
    for key, proba in (("raw", oof.probabilities(frame)), ("recalibrated", recalibrated)):
        estimated = expected_metrics(proba, decision)["accuracy"]
        out[key] = f"{estimated:.3f}" + ("" if low <= estimated <= high else " (out)")
    out["realised"] = float((y == decision).mean())
    out["interval"] = f"{low:.3f}-{high:.3f}"
    return out


def table_of(frame: pd.DataFrame, recalibrated: np.ndarray, min_rows: int) -> pd.DataFrame:
    rows = [row("all", frame, recalibrated)]
    for column in ("climate", "cooling_type"):
        for value, where in slice_positions(frame, column).items():
            if len(where) >= min_rows:
                rows.append(row(f"{column}={value}", frame.iloc[where], recalibrated[where]))
    return pd.DataFrame(rows)


def reshuffled(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The frame with its buildings dealt at random into as many groups as it has folds."""
    buildings = frame["building_id"].unique()
    groups = np.random.default_rng(seed).integers(0, frame["fold"].nunique(), buildings.size)
    return frame.assign(fold=frame["building_id"].map(dict(zip(buildings, groups, strict=True))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--min-rows", type=int, default=1000)
    parser.add_argument("--reshuffles", type=int, default=0)
    args = parser.parse_args()
    frame = pd.read_parquet(args.model / "oof.parquet")
    recalibrated = cross_fitted(frame)
    table = table_of(frame, recalibrated, args.min_rows)
    rows = table.to_dict("records")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    y, decision = oof.labels(frame)
    print(f"realised macro-F1 {macro_f1(y, decision):.3f}")
    for key, proba in (("raw", oof.probabilities(frame)), ("recalibrated", recalibrated)):
        estimated = expected_metrics(proba, decision)
        misses = table[key].str.endswith("(out)").iloc[1:].sum()
        print(
            f"{key}: accuracy gap {estimated['accuracy'] - rows[0]['realised']:+.3f} (target "
            f"±0.02), estimated macro-F1 {estimated['macro_f1']:.3f}; estimate outside the "
            f"realised interval in {misses} of {len(table) - 1} slices"
        )
    for seed in range(args.reshuffles):
        other = table_of(frame, cross_fitted(reshuffled(frame, seed)), args.min_rows)
        outside = other["recalibrated"].str.endswith("(out)").iloc[1:]
        names = "".join(f"; {name}" for name in other["slice"].iloc[1:][outside])
        print(f"buildings reshuffled (seed {seed}): outside in {outside.sum()} slices{names}")


if __name__ == "__main__":
    main()
