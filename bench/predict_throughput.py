"""Benchmark: batch prediction throughput, CSV in → CSV out, on 1 M rows.

The input is the dev data's measurements resampled to ``--rows`` rows (database format). The
baseline, measured in the same run, is pyarrow reading the same CSV and writing a CSV of the
same number of rows: the I/O floor any batch scorer pays.

    .venv/bin/python bench/predict_throughput.py --model DIR [--rows 1000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow.csv as pacsv

from conforto._data.download import resolve_sources
from conforto._model.artifact import load_model
from conforto._model.predict import predict_file
from conforto._settings import get_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    measurements, _ = resolve_sources(get_settings())
    model = load_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "input.csv"
        frame = pd.read_csv(measurements, low_memory=False)
        frame = frame.sample(args.rows, replace=True, random_state=0).reset_index(drop=True)
        frame.to_csv(src, index=False)

        start = time.perf_counter()
        table = pacsv.read_csv(src)
        pacsv.write_csv(table.select(list(range(7))), Path(tmp) / "copy.csv")
        baseline = time.perf_counter() - start

        start = time.perf_counter()
        summary = predict_file(model, src, Path(tmp) / "pred.csv")
        seconds = time.perf_counter() - start
    print(f"rows: {summary.rows:,} ({summary.scored:,} scored)")
    print(f"{'step':34s} {'seconds':>8s} {'rows/s':>11s} {'x baseline':>11s}")
    print(
        f"{'baseline: pyarrow read + write':34s} {baseline:8.2f} "
        f"{args.rows / baseline:11,.0f} {1:11.1f}"
    )
    print(
        f"{'conforto predict (CSV → CSV)':34s} {seconds:8.2f} {args.rows / seconds:11,.0f} "
        f"{seconds / baseline:11.1f}"
    )


if __name__ == "__main__":
    main()
