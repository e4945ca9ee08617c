"""Benchmark: ``conforto train`` + ``conforto evaluate`` on the full dev data, default budget.

The baseline, measured in the same run, is one plain LightGBM fit (default parameters, 100
rounds) on the same matrix: the unit cost the whole procedure multiplies.

    .venv/bin/python bench/train_evaluate.py [--config configs/pipeline.yaml]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import lightgbm as lgb

from conforto._data.download import resolve_sources
from conforto._data.load import load_dataset
from conforto._lifecycle.pipeline import PipelineConfig
from conforto._model.inputs import build_spec, encode, prepare
from conforto._settings import get_settings, load_yaml_model
from conforto._training.evaluate import evaluate_model
from conforto._training.save import write_model
from conforto._training.train import TrainConfig, train_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path)
    args = parser.parse_args()
    config = load_yaml_model(args.config, PipelineConfig).train if args.config else TrainConfig()
    m, d = resolve_sources(get_settings())
    frame = load_dataset(m, d).frame

    rows, y, _ = prepare(frame)
    matrix = encode(rows, build_spec(rows))
    start = time.perf_counter()
    params = {
        "objective": "multiclass",
        "num_class": 3,
        "verbose": -1,
        "num_threads": config.threads,
    }
    lgb.train(params, lgb.Dataset(matrix, y), 100)
    baseline = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = train_model(frame, config=config, progress=False)
        model = write_model(result, frame, Path(tmp) / "model")
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        evaluate_model(model, frame)
        eval_s = time.perf_counter() - start
        metrics = json.loads((Path(tmp) / "model" / "metrics.json").read_text())
    print(f"rows: {len(rows):,}; search_trials={config.search_trials}, folds={config.folds}")
    print(f"{'step':40s} {'seconds':>8s} {'x baseline':>11s}")
    for name, seconds in [
        ("baseline: one LightGBM fit, 100 rounds", baseline),
        ("conforto train (CV + final + reports)", train_s),
        ("conforto evaluate (same rows)", eval_s),
        ("train + evaluate", train_s + eval_s),
    ]:
        print(f"{name:40s} {seconds:8.1f} {seconds / baseline:11.1f}")
    cv = metrics["cv"]
    print("grouped 5-fold CV:", {k: round(v, 4) for k, v in cv["model"].items() if k != "ci"})
    rows = cv["pmv_rows"]
    print(
        f"  rows with PMV: model macro-F1 {rows['model']['macro_f1']:.4f}, "
        f"PMV {rows['pmv']['macro_f1']:.4f}; log loss model {rows['model']['log_loss']:.4f}, "
        f"probabilistic PMV {rows['probabilistic_pmv']['log_loss']:.4f}"
    )
    for name, split in metrics["random_split"].items():
        print(
            f"random 80/20 split, {name}: accuracy {split['accuracy']:.4f}, "
            f"macro-F1 {split['macro_f1']:.4f} ({split['rows']:.0f} test rows)"
        )


if __name__ == "__main__":
    main()
