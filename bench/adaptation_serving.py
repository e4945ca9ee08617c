"""Benchmark: what site adaptation costs the service's scorer, in one run.

The predictor's ``score`` (what each micro-batch of ``/predict`` runs) on the same rooms,
timed in alternating rounds: zero-shot (no site named), and every room naming one of 50 sites
whose states were learned from 100 votes each (the service's state, read from a prediction log
in a temporary SQLite file). Prints the time per call of each at batch sizes 1 and 64 and their
ratio (the median of the rounds' ratios).

    .venv/bin/python bench/adaptation_serving.py --model DIR [--rounds 7] [--calls 300]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from conforto._model.artifact import load_model
from conforto._predictions.records import PredictionRow, VoteRow
from conforto._predictions.store import LogDatabase
from conforto._serving.adaptation import SiteAdaptations
from conforto._serving.runtime import WARM_UP, Predictor
from conforto._settings import SiteAdaptationServeSettings

SITES = 50
VOTES = 100


def _learned(predictor: Predictor, folder: Path) -> SiteAdaptations:
    """50 sites' states, learned from votes in a prediction log as the service learns them."""
    url = f"sqlite:///{folder / 'predictions.db'}"
    database = LogDatabase(url)
    rng = np.random.default_rng(0)
    rooms = [{**WARM_UP, "ta": float(t)} for t in rng.uniform(20, 30, SITES * VOTES)]
    answers = predictor.predict(rooms)
    sites = [f"site {i % SITES}" for i in range(len(rooms))]
    now = time.time()
    database.write(
        [
            PredictionRow.of(a, r, 1.0, s, now=now)
            for a, r, s in zip(answers, rooms, sites, strict=True)
        ]
    )
    votes = rng.integers(-3, 4, len(answers)).astype(float)
    database.write([VoteRow(a.prediction_id, v, now) for a, v in zip(answers, votes, strict=True)])
    adaptations = SiteAdaptations(database, SiteAdaptationServeSettings())
    adaptations.follow(predictor.version, predictor.model.manifest.adaptation, predictor.zero_shot)
    adaptations.refresh()
    return adaptations


def _seconds(call: object, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()  # type: ignore[operator]
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    model = load_model(args.model)
    if model.manifest.adaptation is None:
        raise SystemExit(f"{args.model} predates site adaptation: train it again")
    predictor = Predictor(model, model.version)
    with tempfile.TemporaryDirectory() as folder:
        predictor.adaptations = _learned(predictor, Path(folder))
        print(f"{len(predictor.adaptations.learned.sites)} sites learned, {VOTES} votes each")
        for size in (1, 64):
            rooms = [{**WARM_UP, "ta": 20.0 + 10.0 * i / size} for i in range(size)]
            named = [f"site {i % SITES}" for i in range(size)]
            plain, adapted = [], []
            for _ in range(args.rounds):
                plain.append(_seconds(lambda r=rooms: predictor.score(r), args.calls))
                adapted.append(
                    _seconds(lambda r=rooms, s=named: predictor.score(r, (), s), args.calls)
                )
            ratio = statistics.median(a / p for a, p in zip(adapted, plain, strict=True))
            print(
                f"batch {size:>2}: zero-shot {1e6 * statistics.median(plain):7.0f} µs, "
                f"adapted {1e6 * statistics.median(adapted):7.0f} µs a call: {ratio:.2f}×"
            )


if __name__ == "__main__":
    main()
