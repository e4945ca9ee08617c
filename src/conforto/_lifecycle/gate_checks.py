"""The promotion gate's checks and their thresholds: each one measured, with its limit.

The gate (:mod:`conforto._lifecycle.gate`) runs them on a challenger's building-grouped
out-of-fold predictions, and the champion's on the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NotRequired, TypedDict

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from conforto._scoring import oof
from conforto._scoring.scores import log_losses, macro_f1, paired_differences
from conforto._training.baselines import pmv_class
from conforto._training.heads import PHYSICS_BASELINES
from conforto._uncertainty.calibration import cross_conformal_sets

if TYPE_CHECKING:
    import pandas as pd

    from conforto._training.adaptation import AdaptationSummary
    from conforto._training.heads import HeadEvaluation


class GateConfig(BaseModel):
    """Thresholds of the promotion gate (``gate:`` in ``configs/pipeline.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    min_gain_over_pmv: float = Field(
        0.05, description="Macro-F1 the model must gain over PMV binned, on rows with PMV."
    )
    min_gain_over_majority: float = Field(
        0.10, description="Macro-F1 the model must gain over the majority class."
    )
    min_log_loss_gain_over_probabilistic_pmv: float = Field(
        0.0, description="Log loss [nats] the model must save over the probabilistic PMV."
    )
    champion_margin_macro_f1: float = Field(
        0.01, ge=0, description="Non-inferiority margin of macro-F1 against the champion."
    )
    champion_margin_log_loss: float = Field(
        0.01, ge=0, description="Non-inferiority margin of log loss [nats] against the champion."
    )
    confidence: float = Field(
        0.95, gt=0.5, lt=1.0, description="One-sided confidence of the paired bootstrap."
    )
    bootstrap_reps: int = Field(1000, ge=100, le=20000, description="Bootstrap replicates.")
    slice_min_rows: int = Field(
        oof.MIN_SLICE_ROWS, ge=1, description="Slices with fewer rows are not judged."
    )
    adaptation_min_votes: int = Field(
        500,
        ge=1,
        description="Buckets of earlier votes with fewer votes are shown, not judged, in site "
        "adaptation's check.",
    )
    slice_tolerance: float = Field(
        0.03, ge=0, description="Largest macro-F1 drop allowed on a judged slice."
    )
    coverage_level: float = Field(
        0.9, ge=0.5, le=0.99, description="Level at which the prediction sets' coverage is judged."
    )
    coverage_tolerance: float = Field(
        0.015,
        gt=0,
        description="Largest distance allowed between the out-of-fold coverage of the prediction "
        "sets and their nominal level.",
    )
    min_head_log_loss_gain: float = Field(
        0.0,
        description="Log loss [nats] each occupant-response head must save over its physics "
        "baseline (PPD/100; a logistic model on PMV), out of fold.",
    )
    shadow_min_predictions: int | None = Field(
        None,
        ge=1,
        description="The shadow check: `conforto model promote` takes a version (without "
        "--force) only after it scored this many of production's requests as a shadow "
        "challenger and was never stopped automatically; unset: no shadow period.",
    )
    seed: int = 0


@dataclass(frozen=True)
class GateCheck:
    """One check of the gate: what was measured against which threshold."""

    name: str
    group: str
    passed: bool
    detail: str
    value: float | None = None
    threshold: float | None = None


class Summary(TypedDict):
    """Macro-F1 and log loss [nats] of a predictions frame, on all rows and where PMV exists."""

    macro_f1: float
    macro_f1_pmv_rows: float
    log_loss: float
    log_loss_pmv_rows: float


class Comparison(TypedDict):
    """The model's summary beside the three baselines it must beat, and the champion's."""

    model: Summary
    pmv: dict[str, float]
    majority: dict[str, float]
    probabilistic_pmv: dict[str, float]
    champion: NotRequired[Summary]


def _scores(frame: pd.DataFrame, scorer: str = "p") -> tuple[np.ndarray, np.ndarray]:
    """A scorer's probabilities and classes: the model's decision rule, argmax for baselines."""
    proba = oof.probabilities(frame, scorer)
    return proba, oof.labels(frame)[1] if scorer == "p" else proba.argmax(axis=1)


def summary(pred: pd.DataFrame) -> Summary:
    """Macro-F1 and log loss [nats] of a predictions frame, on all rows and where PMV exists."""
    y = pred["y"].to_numpy(dtype=np.int64)
    proba, decision = _scores(pred)
    loss = log_losses(y, proba)
    pmv = pred["pmv"].notna().to_numpy()
    return {
        "macro_f1": macro_f1(y, decision),
        "macro_f1_pmv_rows": macro_f1(y[pmv], decision[pmv]),
        "log_loss": float(loss.mean()),
        "log_loss_pmv_rows": float(loss[pmv].mean()),
    }


def baseline_checks(pred: pd.DataFrame, config: GateConfig) -> tuple[list[GateCheck], Comparison]:
    """(a) The model against PMV binned, the majority class and the probabilistic PMV.

    Parameters
    ----------
    pred
        Out-of-fold predictions (``oof.parquet``) with ``y``, ``decision``, ``p_*``,
        ``majority_*``, ``pmvprob_*`` and ``pmv``.

    Returns
    -------
    tuple
        The checks and the metrics they compared.
    """
    comparison = _baselines(pred)
    model, pmv_rows = comparison["model"], int(pred["pmv"].notna().sum())
    model_f1, model_pmv_f1 = model["macro_f1"], model["macro_f1_pmv_rows"]
    pmv_f1 = comparison["pmv"]["macro_f1_pmv_rows"]
    majority_f1 = comparison["majority"]["macro_f1"]
    model_ll = model["log_loss_pmv_rows"]
    prob_pmv_ll = comparison["probabilistic_pmv"]["log_loss_pmv_rows"]
    gain_pmv, gain_majority = model_pmv_f1 - pmv_f1, model_f1 - majority_f1
    ll_gain = prob_pmv_ll - model_ll
    checks = [
        GateCheck(
            "beats PMV",
            "baselines",
            gain_pmv >= config.min_gain_over_pmv,
            f"macro-F1 {model_pmv_f1:.3f} vs PMV {pmv_f1:.3f} on {pmv_rows} rows: "
            f"gain {gain_pmv:+.3f} (required ≥ {config.min_gain_over_pmv:+.3f})",
            gain_pmv,
            config.min_gain_over_pmv,
        ),
        GateCheck(
            "beats the majority class",
            "baselines",
            gain_majority >= config.min_gain_over_majority,
            f"macro-F1 {model_f1:.3f} vs majority {majority_f1:.3f}: gain {gain_majority:+.3f} "
            f"(required ≥ {config.min_gain_over_majority:+.3f})",
            gain_majority,
            config.min_gain_over_majority,
        ),
        GateCheck(
            "beats the probabilistic PMV",
            "baselines",
            ll_gain >= config.min_log_loss_gain_over_probabilistic_pmv,
            f"log loss {model_ll:.3f} vs {prob_pmv_ll:.3f} nats on rows with PMV: saves "
            f"{ll_gain:+.3f} (required ≥ {config.min_log_loss_gain_over_probabilistic_pmv:+.3f})",
            ll_gain,
            config.min_log_loss_gain_over_probabilistic_pmv,
        ),
    ]
    return checks, comparison


def _baselines(pred: pd.DataFrame) -> Comparison:
    """The model's summary beside PMV binned, the majority class and the probabilistic PMV."""
    y = pred["y"].to_numpy(dtype=np.int64)
    _, majority_pred = _scores(pred, "majority")
    has_pmv = pred["pmv"].notna().to_numpy()
    pmv = pred["pmv"].to_numpy(dtype=np.float64)[has_pmv]
    prob_pmv, _ = _scores(pred, "pmvprob")
    return {
        "model": summary(pred),
        "pmv": {"macro_f1_pmv_rows": macro_f1(y[has_pmv], pmv_class(pmv))},
        "majority": {"macro_f1": macro_f1(y, majority_pred)},
        "probabilistic_pmv": {
            "log_loss_pmv_rows": float(log_losses(y[has_pmv], prob_pmv[has_pmv]).mean())
        },
    }


def paired_bootstrap(
    y: np.ndarray,
    challenger: pd.DataFrame,
    champion: pd.DataFrame,
    groups: np.ndarray,
    *,
    reps: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Bootstrap distribution of challenger − champion, resampling buildings (paired rows).

    Parameters
    ----------
    y
        True classes of the rows both were scored on.
    challenger, champion
        Out-of-fold predictions on the same rows (``decision`` and ``p_*``).
    groups
        Building of every row.
    reps, seed
        Replicates and seed.

    Returns
    -------
    dict
        ``macro_f1`` and ``log_loss`` [nats]: ``reps`` differences each (positive macro-F1 and
        negative log loss favour the challenger).
    """
    return paired_differences(
        y, _scores(challenger), _scores(champion), groups, reps=reps, seed=seed
    )


def champion_checks(
    challenger: pd.DataFrame, champion: pd.DataFrame, config: GateConfig
) -> tuple[list[GateCheck], dict[str, np.ndarray]]:
    """(b) Non-inferiority against the champion, by a paired bootstrap over buildings.

    The challenger passes when the one-sided ``confidence`` bound of the difference stays within
    the margin: macro-F1 lower bound ≥ −margin, log-loss upper bound ≤ +margin.
    """
    y = challenger["y"].to_numpy(dtype=np.int64)
    groups = challenger["building_id"].to_numpy()
    deltas = paired_bootstrap(
        y, challenger, champion, groups, reps=config.bootstrap_reps, seed=config.seed
    )
    tail = 1.0 - config.confidence
    f1_low = float(np.quantile(deltas["macro_f1"], tail))
    ll_high = float(np.quantile(deltas["log_loss"], 1.0 - tail))
    level = f"{config.confidence:.0%}"
    checks = [
        GateCheck(
            "not worse than the champion in macro-F1",
            "champion",
            f1_low >= -config.champion_margin_macro_f1,
            f"Δ macro-F1 median {np.median(deltas['macro_f1']):+.4f}, {level} lower bound "
            f"{f1_low:+.4f} (allowed ≥ {-config.champion_margin_macro_f1:+.4f}); "
            f"{np.unique(groups).size} buildings resampled",
            f1_low,
            -config.champion_margin_macro_f1,
        ),
        GateCheck(
            "not worse than the champion in log loss",
            "champion",
            ll_high <= config.champion_margin_log_loss,
            f"Δ log loss median {np.median(deltas['log_loss']):+.4f} nats, {level} upper bound "
            f"{ll_high:+.4f} (allowed ≤ {config.champion_margin_log_loss:+.4f})",
            ll_high,
            config.champion_margin_log_loss,
        ),
    ]
    return checks, deltas


class SliceDelta(TypedDict):
    """A slice's macro-F1, the challenger's and the champion's, on the same votes."""

    slice: str
    value: str
    rows: int
    challenger: float
    champion: float
    delta: float


def slice_checks(
    challenger: pd.DataFrame, champion: pd.DataFrame, config: GateConfig
) -> tuple[list[GateCheck], list[SliceDelta]]:
    """(c) No slice with at least ``slice_min_rows`` rows loses more than the tolerance."""
    y = challenger["y"].to_numpy(dtype=np.int64)
    ours, theirs = _scores(challenger)[1], _scores(champion)[1]
    table: list[SliceDelta] = []
    for column, groups in oof.slices(challenger, oof.JUDGED_SLICES).items():
        for value, index in groups.items():
            if len(index) < config.slice_min_rows:
                continue
            new, old = macro_f1(y[index], ours[index]), macro_f1(y[index], theirs[index])
            table.append(
                SliceDelta(
                    slice=column,
                    value=str(value),
                    rows=len(index),
                    challenger=new,
                    champion=old,
                    delta=new - old,
                )
            )
    worst = [r for r in table if r["delta"] < -config.slice_tolerance]
    detail = (
        "; ".join(
            f"{r['slice']}={r['value']} Δ {r['delta']:+.3f} ({r['rows']} rows)" for r in worst
        )
        + f" (allowed ≥ {-config.slice_tolerance:+.3f})"
        if worst
        else f"{len(table)} slices with ≥ {config.slice_min_rows} rows, none lost more than "
        f"{config.slice_tolerance:.3f} macro-F1"
    )
    lowest = min((r["delta"] for r in table), default=0.0)
    check = GateCheck(
        "no slice regresses", "slices", not worst, detail, lowest, -config.slice_tolerance
    )
    return [check], table


def coverage_checks(
    pred: pd.DataFrame, config: GateConfig, *, conformal_by: str = "all"
) -> list[GateCheck]:
    """(e) The cross-conformal coverage of the prediction sets at ``coverage_level``, within
    ``coverage_tolerance`` of it (see :mod:`conforto._uncertainty.calibration`).
    """
    level = config.coverage_level
    sets = cross_conformal_sets(pred, [level], by=conformal_by)[level]
    y = pred["y"].to_numpy(dtype=np.int64)
    coverage = float(sets[np.arange(len(y)), y].mean())
    miss = coverage - level
    return [
        GateCheck(
            "prediction sets cover their level",
            "coverage",
            abs(miss) <= config.coverage_tolerance,
            f"{coverage:.3f} of the votes inside their {level:.2f} set (mean size "
            f"{sets.sum(axis=1).mean():.2f} classes): {miss:+.3f} from the level (allowed "
            f"±{config.coverage_tolerance:.3f})",
            miss,
            config.coverage_tolerance,
        )
    ]


def head_checks(report: dict[str, HeadEvaluation] | None, min_gain: float = 0.0) -> list[GateCheck]:
    """The gate's checks of the heads: each beats its physics baseline in log loss, on the
    baseline's rows (none for a model without heads).

    Parameters
    ----------
    report
        The model's :func:`heads_report` (``metrics.json`` → ``cv.heads``).
    min_gain
        Log loss [nats] a head must save over its baseline (``gate.min_head_log_loss_gain``).
    """
    if not report:
        return []
    checks = []
    for head, entry in report.items():
        name = PHYSICS_BASELINES[head]
        table = entry["scores"]
        baseline = table[name]
        model = table.get(f"model on the {name} rows", table["model"])
        gain = baseline["log_loss"] - model["log_loss"]
        checks.append(
            GateCheck(
                f"{head} beats {name}",
                "responses",
                gain > min_gain,
                f"log loss {model['log_loss']:.4f} against {baseline['log_loss']:.4f} "
                f"({baseline['rows']:,} answers, out of fold): saves {gain:+.4f} (required "
                f"> {min_gain:+.4f})",
                gain,
                min_gain,
            )
        )
    return checks


def adaptation_checks(summary: AdaptationSummary | None, min_votes: int) -> list[GateCheck]:
    """Site adaptation makes no bucket of earlier votes worse: in every bucket of at least
    ``min_votes`` votes, adapted answers are not worse than zero-shot beyond the interval of
    the difference (macro-F1's upper bound below zero, or log loss's or the dissatisfied head's
    Brier score's lower bound above it).
    Smaller buckets are shown in the report, not judged; none for a model without adaptation.
    """
    if summary is None:
        return []
    checks = []
    for bucket in summary["buckets"]:
        if bucket["bucket"] == "0" or bucket["votes"] < min_votes:
            continue  # no earlier vote: answered zero-shot
        f1, loss = bucket["macro_f1_gain"], bucket["log_loss_change"]
        brier = bucket.get("dissatisfied_brier_change")
        worse = f1["high"] < 0 or loss["low"] > 0 or (brier is not None and brier["low"] > 0)
        head = (
            ""
            if brier is None
            else f", dissatisfied Brier {brier['value']:+.4f} ({brier['low']:+.4f}, "
            f"{brier['high']:+.4f})"
        )
        checks.append(
            GateCheck(
                f"site adaptation with {bucket['bucket']} earlier votes",
                "adaptation",
                not worse,
                f"{bucket['votes']:,} votes of {bucket['buildings']} buildings replayed: "
                f"macro-F1 {f1['value']:+.4f} ({f1['low']:+.4f}, {f1['high']:+.4f}), log loss "
                f"{loss['value']:+.4f} ({loss['low']:+.4f}, {loss['high']:+.4f}){head} against "
                "zero-shot (95 % over buildings; refused when wholly worse)",
                f1["value"],
                0.0,
            )
        )
    return checks
