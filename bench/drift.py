"""Benchmark: does the drift monitor cry wolf, does it see real drift, and what a long window costs.

On the dev data, against the model's own drift reference:

1. 200 windows of 1,000 rows drawn at random from the training data: how often the data set
   is called drifted (target ≤ 2 %), and how often any input is (target ≤ 5 %);
2. 200 such windows with ``ta`` and ``tr`` raised by 1.5 °C: how often ``ta`` is flagged
   (target ≥ 95 %);
3. summer-only windows, against the all-year reference and season-matched: the seasonal inputs
   should be flagged by the first and nothing by the second;
4. ``conforto monitor drift --since`` over 1,000,000 logged predictions in SQLite: wall time
   and peak memory, against reading the same rows whole with pandas (the baseline).

    .venv/bin/python bench/drift.py --model DIR [--windows 200] [--log-rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from conforto._data.download import resolve_sources
from conforto._data.load import load_dataset, with_month
from conforto._model.artifact import load_model
from conforto._monitor.drift import check_drift
from conforto._monitor.window import FrameSource
from conforto._predictions.records import PredictionRow
from conforto._predictions.store import LogDatabase
from conforto._settings import get_settings

if TYPE_CHECKING:
    import pandas as pd

SEASONAL = ("t_out_isd", "t_mot_isd", "clo", "season")


def windows(
    model: object,
    frame: pd.DataFrame,
    count: int,
    rng: np.random.Generator,
    shift: float = 0.0,
    matched: bool = False,
) -> tuple[float, float, Counter[str]]:
    """Shares of windows with data-set drift and with any drifted input; flags per input."""
    dataset, any_input, flagged = 0, 0, Counter[str]()
    for _ in range(count):
        rows = frame.iloc[rng.choice(len(frame), 1000, replace=False)]
        if shift:
            rows = rows.assign(ta=rows["ta"] + shift, tr=rows["tr"] + shift)
        report, _, _ = check_drift(model, FrameSource(rows), season_matched=matched)  # type: ignore[arg-type]
        dataset += report.dataset_drift
        any_input += bool(report.drifted_features)
        flagged.update(report.drifted_features)
    return dataset / count, any_input / count, flagged


def fill_log(url: str, frame: pd.DataFrame, rows: int, rng: np.random.Generator) -> None:
    """``rows`` predictions of the last 30 days, their inputs drawn from ``frame``."""
    inputs = [
        "ta",
        "tr",
        "rh",
        "vel",
        "met",
        "clo",
        "t_mot_isd",
        "t_out_isd",
        "season",
        "climate",
        "cooling_type",
        "building_type",
        "country",
        "age",
        "gender",
    ]
    records = frame[inputs].to_dict("records")
    database, now = LogDatabase(url), time.time()
    for start in range(0, rows, 20_000):
        batch = []
        for i in rng.choice(len(records), min(20_000, rows - start)):
            given = {str(k): v for k, v in records[i].items() if v is not None and v == v}
            when = now - rng.uniform(0, 29 * 86_400)
            batch.append(
                PredictionRow(
                    uuid.uuid4().hex, when, "1", "neutral", 0.2, 0.5, 0.3, None, 2.0, given, None
                )
            )
        database.write(batch)
    database.close()


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time [s] and peak resident memory [MB] of a command (its own, from ``wait4``)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if status:
        sys.exit(f"{command[:4]} failed ({status})")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--windows", type=int, default=200)
    parser.add_argument("--log-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    model = load_model(args.model)
    frame = with_month(load_dataset(*resolve_sources(get_settings())).frame)
    frame = frame[frame["thermal_sensation"].notna()].reset_index(drop=True)
    rng = np.random.default_rng(0)

    dataset, any_input, flagged = windows(model, frame, args.windows, rng)
    print(
        f"random training windows: data-set drift {dataset:.1%} (≤ 2 %), any input "
        f"{any_input:.1%} (≤ 5 %); inputs flagged: {dict(flagged)}"
    )
    _, _, warm = windows(model, frame, args.windows, rng, shift=1.5)
    print(
        f"ta and tr +1.5 °C: ta flagged in {warm['ta'] / args.windows:.1%} (≥ 95 %), "
        f"tr in {warm['tr'] / args.windows:.1%}"
    )
    summer = frame[frame["season"] == "summer"]
    count = max(args.windows // 4, 1)
    _, plain_any, plain = windows(model, summer, count, rng)
    _, matched_any, matched = windows(model, summer, count, rng, matched=True)
    print(
        f"summer windows vs all-year reference: some input flagged in {plain_any:.0%}; "
        + ", ".join(f"{n} {plain[n] / count:.0%}" for n in SEASONAL)
    )
    print(
        f"summer windows, season-matched: some input flagged in {matched_any:.0%} {dict(matched)}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'predictions.db'}"
        start = time.perf_counter()
        fill_log(url, frame, args.log_rows, rng)
        took = time.perf_counter() - start
        print(f"log of {args.log_rows:,} predictions written in {took:.0f} s")
        env = {"CONFORTO_SERVE__LOG_URL": url, "CONFORTO_HOME": tmp}
        naive = (
            "import pandas as pd, sqlalchemy as sa, json, sys; e = sa.create_engine(sys.argv[1]); "
            "f = pd.read_sql('select created, inputs from predictions', e); "
            "pd.DataFrame.from_records([json.loads(i) for i in f['inputs']])"
        )
        base_s, base_mb = timed([sys.executable, "-c", naive, url], env)
        run_s, run_mb = timed(
            [
                sys.executable,
                "-m",
                "conforto",
                "monitor",
                "drift",
                "--model",
                str(args.model),
                "--since",
                "30d",
                "--out",
                str(Path(tmp) / "report"),
            ],
            env,
        )
        print(f"baseline, pandas.read_sql of the table: {base_s:.1f} s, peak {base_mb:.0f} MB")
        print(
            f"conforto monitor drift --since 30d: {run_s:.1f} s (×{run_s / base_s:.1f}), "
            f"peak {run_mb:.0f} MB (×{run_mb / base_mb:.2f})"
        )


if __name__ == "__main__":
    main()
