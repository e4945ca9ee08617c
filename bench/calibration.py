"""Report: how the model's calibrations hold on buildings it never saw.

Two calibrations are fitted on a model's building-grouped out-of-fold predictions: the
confidence calibration the live performance estimate reads
(``conforto._uncertainty.confidence``) and the prediction sets'
(``conforto._uncertainty.calibration``). Both are judged two ways.

``--model DIR``, on the model's out-of-fold predictions: the accuracy estimated without labels
(``conforto._monitor.performance.expected_metrics``) from the probabilities as answered
(``raw``) and recalibrated as the monitor reads them, each fold's calibration fitted on the
other folds; against the realised accuracy, overall and in every climate and cooling-type
slice of 1,000 rows or more, with the realised 95 % bootstrap interval over buildings.
Targets: within 0.02 overall, inside the realised interval in every slice. (The sets'
cross-conformal figures are in the model's ``metrics.json`` and report.)

``--unseen K``, as in service, K times: the dev data's buildings dealt at random 80/20, a model
trained on the 80 % (``configs/pipeline.yaml``, ~2 min each), its calibrations fitted on its
own out-of-fold predictions, judged on the 20 % it never saw: the same estimate table (slices
of 500 votes or more: the 20 % is small), then the prediction sets' coverage at 0.80, 0.90 and
0.95 for each grouping (``climate``, ``all``, ``class``) and the slices off by more than 0.05.

    .venv/bin/python bench/calibration.py --model DIR
    .venv/bin/python bench/calibration.py --unseen 2
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from conforto._scoring import oof
from conforto._scoring.scores import bootstrap_interval, macro_f1
from conforto._uncertainty.calibration import (
    REPORT_LEVELS,
    SLICE_TOLERANCE,
    calibrate_frame,
    coverage_report,
)
from conforto._uncertainty.confidence import expected_metrics
from conforto._uncertainty.estimate import cross_fitted
from conforto._uncertainty.sets import GROUPINGS

FloatArray = np.ndarray


def row(name: str, frame: pd.DataFrame, recalibrated: FloatArray) -> dict[str, object]:
    y, decision = oof.labels(frame)
    groups = frame["building_id"].to_numpy(np.int64)
    low, high = bootstrap_interval(y, decision, groups, reps=1000)["accuracy"]
    out: dict[str, object] = {"slice": name, "rows": len(frame)}
    for key, proba in (("raw", oof.probabilities(frame)), ("recalibrated", recalibrated)):
        estimated = expected_metrics(proba, decision)["accuracy"]
        out[key] = f"{estimated:.3f}" + ("" if low <= estimated <= high else " (out)")
    out["realised"] = float((y == decision).mean())
    out["interval"] = f"{low:.3f}-{high:.3f}"
    return out


def report(frame: pd.DataFrame, recalibrated: FloatArray, min_rows: int) -> None:
    """The table, then each estimate's overall gap, macro-F1 and slices outside."""
    rows = [row("all", frame, recalibrated)]
    for column, groups in oof.slices(frame, ("climate", "cooling_type")).items():
        for value, where in groups.items():
            if len(where) >= min_rows:
                rows.append(row(f"{column}={value}", frame.iloc[where], recalibrated[where]))
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    y, decision = oof.labels(frame)
    realised = float((y == decision).mean())
    print(f"realised macro-F1 {macro_f1(y, decision):.3f}")
    for key, proba in (("raw", oof.probabilities(frame)), ("recalibrated", recalibrated)):
        estimated = expected_metrics(proba, decision)
        outside = table[key].str.endswith("(out)").iloc[1:].sum()
        print(
            f"{key}: accuracy gap {estimated['accuracy'] - realised:+.3f} (target "
            f"±0.02), estimated macro-F1 {estimated['macro_f1']:.3f}; estimate outside the "
            f"realised interval in {outside} of {len(table) - 1} slices"
        )


def sets(table: pd.DataFrame, calibration_rows: pd.DataFrame, min_rows: int = 500) -> None:
    """Coverage of the sets of each grouping on ``table``, calibrated on ``calibration_rows``;
    slices of ``min_rows`` or more judged."""
    lines = []
    for by in GROUPINGS:
        calibration = calibrate_frame(calibration_rows, by=by)
        found = coverage_report(table, calibration=calibration)
        judged = [e for v in found["slices"].values() for e in v if e["rows"] >= min_rows]
        levels = np.asarray(REPORT_LEVELS)
        gaps = [float(g) for e in judged for g in np.abs(np.asarray(e["coverage"]) - levels)]
        off = [g for g in gaps if g > SLICE_TOLERANCE]
        lines.append(
            {
                "grouping": by,
                "coverage": " / ".join(f"{c:.3f}" for c in found["overall"]["coverage"]),
                "mean size": " / ".join(f"{c:.2f}" for c in found["overall"]["mean_size"]),
                f"slice-levels off > {SLICE_TOLERANCE}": f"{len(off)} of {len(gaps)}",
                "mean |gap|": float(np.mean(gaps)),
            }
        )
    print("prediction sets at " + " / ".join(f"{x:g}" for x in REPORT_LEVELS))
    print(pd.DataFrame(lines).to_string(index=False, float_format=lambda x: f"{x:.3f}"))


def unseen(draws: int, config: Path, work: Path) -> None:
    """Train on 80 % of the buildings, judge the stored calibrations on the other 20 %."""
    from conforto._cli.common import pipeline_config, sources
    from conforto._data.load import load_dataset
    from conforto._model.artifact import load_model
    from conforto._training.evaluate import predictions_frame
    from conforto._training.save import write_model
    from conforto._training.train import train_model

    files = sources(None, None)  # CONFORTO_MEASUREMENTS / CONFORTO_METADATA
    measurements, metadata = pd.read_csv(files[0], low_memory=False), pd.read_csv(files[1])
    buildings = metadata["building_id"].unique()
    for seed in range(1, draws + 1):
        held = np.random.default_rng(seed).choice(
            buildings, size=len(buildings) // 5, replace=False
        )
        paths = {}
        for part, inside in (("seen", False), ("unseen", True)):
            paths[part] = (work / f"{part}{seed}.csv", work / f"{part}{seed}_meta.csv")
            for table, path in zip((measurements, metadata), paths[part], strict=True):
                table[table["building_id"].isin(held) == inside].to_csv(path, index=False)
        frame = load_dataset(*paths["seen"]).frame
        write_model(train_model(frame, config=pipeline_config(config).train), frame, work / "m")
        model = load_model(work / "m")
        table = predictions_frame(model, load_dataset(*paths["unseen"]).frame)
        recalibrated = model.confidence.recalibrated(oof.probabilities(table), oof.labels(table)[1])
        print(
            f"\ndraw {seed}: a model of {len(buildings) - len(held)} buildings judged on the "
            f"{len(held)} it never saw ({len(table):,} votes)"
        )
        report(table, recalibrated, min_rows=500)
        sets(table, pd.read_parquet(work / "m" / "oof.parquet"))
        shutil.rmtree(work / "m")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--unseen", type=int, default=0, help="draws of unseen buildings")
    parser.add_argument("--config", type=Path, default=Path("configs/pipeline.yaml"))
    args = parser.parse_args()
    if args.model:
        frame = pd.read_parquet(args.model / "oof.parquet")
        report(frame, cross_fitted(frame), min_rows=1000)
    if args.unseen:
        with tempfile.TemporaryDirectory() as work:
            unseen(args.unseen, args.config, Path(work))


if __name__ == "__main__":
    main()
