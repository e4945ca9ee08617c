"""Report: site adaptation replayed day by day, against zero-shot and the one-offset baseline.

On a model's out-of-fold predictions (``oof.parquet``: each building answered by a booster that
never saw it), every held-out building is replayed day by day (``conforto._adaptation.replay``),
each fold with the strength the other folds favour, for three methods:

- ``one offset``: the baseline of issue #49: one offset per building on the log-probabilities,
  shrunk toward zero, votes never fading;
- ``site``: offsets and a temperature slope, votes fading (half-life 30 days);
- ``site + occupant``: the same and each occupant's offsets on top (the default).

For the votes with at least 20 earlier votes of their site (and by bucket of earlier votes):
macro-F1 and log loss of each method against zero-shot (and the dissatisfied head's Brier score,
for a model trained with the head's out-of-fold answers), and of each method against the
baseline, with 95 % intervals that resample buildings (paired: one draw for both answers).

    .venv/bin/python bench/adaptation.py --model .conforto/models/latest
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from conforto._adaptation.frame import votes_of
from conforto._adaptation.replay import choose_strength
from conforto._adaptation.report import BucketScores, by_earlier_votes, compare
from conforto._adaptation.site import AdaptationSettings

METHODS = {
    "one offset": AdaptationSettings(slope_ratio=None, occupant_ratio=None, half_life_days=None),
    "site": AdaptationSettings(occupant_ratio=None),
    "site + occupant": AdaptationSettings(),
}


def _line(name: str, scores: BucketScores) -> str:
    f1, ll = scores["macro_f1_gain"], scores["log_loss_change"]
    brier = scores.get("dissatisfied_brier_change")
    head = ""
    if brier is not None:
        head = f"  ΔBrier {brier['value']:+.4f} ({brier['low']:+.4f}, {brier['high']:+.4f})"
    return (
        f"  {name:<34} {scores['votes']:>6} {scores['buildings']:>4}  "
        f"ΔF1 {f1['value']:+.4f} ({f1['low']:+.4f}, {f1['high']:+.4f})  "
        f"Δlog loss {ll['value']:+.4f} ({ll['low']:+.4f}, {ll['high']:+.4f}){head}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path(".conforto/models/latest"))
    parser.add_argument("--reps", type=int, default=1000, help="bootstrap replicates")
    parser.add_argument("--least", type=int, default=20, help="earlier votes of the headline")
    args = parser.parse_args()
    frame = pd.read_parquet(args.model / "oof.parquet")
    if "timestamp" not in frame.columns:
        raise SystemExit(f"{args.model} predates site adaptation (no timestamp): train it again")
    folds = json.loads((args.model / "metrics.json").read_text())["folds"]
    weights = np.asarray([f["class_weights"] for f in folds])[frame["fold"].to_numpy()]
    votes = votes_of(frame)
    buildings = frame["building_id"].to_numpy(dtype=np.int64)
    fold = frame["fold"].to_numpy(dtype=np.int64)
    zero = np.exp(votes.logp)
    adapted = {}
    for name, settings in METHODS.items():
        choice = choose_strength(votes, buildings, fold, settings)
        adapted[name] = np.exp(choice.replay.logp)
        used = choice.replay.votes
        head = None
        upset = choice.replay.p_dissatisfied
        if (
            votes.dissatisfied is not None
            and votes.p_dissatisfied is not None
            and upset is not None
        ):
            head = (votes.dissatisfied, votes.p_dissatisfied, upset)
        print(f"{name}: strength {choice.strength:g} (by fold {list(choice.by_fold.values())})")
        for scores in by_earlier_votes(
            votes.y,
            zero,
            adapted[name],
            used,
            weights,
            buildings,
            dissatisfied=head,
            reps=args.reps,
        ):
            print(_line(f"earlier votes {scores['bucket']}", scores))
    head = used >= args.least
    print(f"\nvotes with at least {args.least} earlier votes of their site:")
    for name, probabilities in adapted.items():
        on = [a[head] for a in (votes.y, zero, probabilities, weights, buildings)]
        print(_line(f"{name} − zero-shot", compare(*on, label=name, reps=args.reps)))
    baseline = adapted["one offset"]
    for name, probabilities in list(adapted.items())[1:]:
        on = [a[head] for a in (votes.y, baseline, probabilities, weights, buildings)]
        print(_line(f"{name} − one offset", compare(*on, label=name, reps=args.reps)))


if __name__ == "__main__":
    main()
