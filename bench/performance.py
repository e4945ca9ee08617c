"""Report: how well the model's probabilities estimate its own accuracy, on buildings it never saw.

On the building-grouped out-of-fold predictions of a model (its ``oof.parquet``): the accuracy
estimated from the probabilities alone (``conforto.monitor.performance.expected_metrics``)
against the realised accuracy, overall and in every climate and cooling-type slice with at
least 1,000 rows, with the realised 95 % bootstrap interval over buildings. Targets: within
0.02 overall, inside the realised interval in every slice.

    .venv/bin/python bench/performance.py --model DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from conforto import oof
from conforto.metrics import bootstrap_interval, slice_positions
from conforto.monitor.performance import expected_metrics


def row(name: str, frame: pd.DataFrame) -> dict[str, object]:
    y, decision = oof.labels(frame)
    estimated = expected_metrics(oof.probabilities(frame), decision)["accuracy"]
    realised = float((y == decision).mean())
    groups = frame["building_id"].to_numpy(np.int64)
    low, high = bootstrap_interval(y, decision, groups, reps=1000)["accuracy"]
    return {
        "slice": name,
        "rows": len(frame),
        "estimated": estimated,
        "realised": realised,
        "interval": f"{low:.3f}-{high:.3f}",
        "within": "yes" if low <= estimated <= high else "NO",
        "gap": estimated - realised,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--min-rows", type=int, default=1000)
    args = parser.parse_args()
    frame = pd.read_parquet(args.model / "oof.parquet")
    rows = [row("all", frame)]
    for column in ("climate", "cooling_type"):
        for value, where in slice_positions(frame, column).items():
            if len(where) >= args.min_rows:
                rows.append(row(f"{column}={value}", frame.iloc[where]))
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    inside = (table["within"] == "yes").iloc[1:]
    print(
        f"overall gap {rows[0]['gap']:+.3f} (target within ±0.02); estimate inside the realised "
        f"interval in {inside.sum()} of {len(inside)} slices"
    )


if __name__ == "__main__":
    main()
