"""Evaluation: metrics against baselines, slices with intervals, report, model card."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from conforto._data.target import CLASS_NAMES
from conforto._fileio import atomic_write_json, atomic_write_text
from conforto._model.inputs import encode, prepare
from conforto._physics.features import comfort_features
from conforto._reports import figure_uri, new_figure, render
from conforto._scoring import oof
from conforto._scoring.scores import (
    bootstrap_interval,
    classification_metrics,
    confusion,
    macro_f1,
    reliability,
)
from conforto._training.baselines import ProbabilisticPMV, pmv_class, pmv_onehot
from conforto._training.heads import evaluate_heads
from conforto._training.summary import MetricsFile
from conforto._uncertainty.calibration import TOLERANCE, coverage_misses, coverage_report
from conforto._uncertainty.estimate import estimate_report

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from conforto._model.artifact import ThermalModel
    from conforto._model.manifest import Manifest
    from conforto._training.adaptation import AdaptationSummary
    from conforto._training.heads import HeadEvaluation
    from conforto._training.summary import Evaluation, SliceScores
    from conforto._uncertainty.calibration import CoverageReport

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
#: Slices with fewer rows are reported without an interval (nor named among the weakest).
MIN_INTERVAL_ROWS = 300
#: Slices the model card names as the weakest, per slice column.
WEAKEST = 5


def summarise(pred: pd.DataFrame, *, seed: int = 0) -> Evaluation:
    """Metrics of the model and its baselines on the same rows, plus slices.

    Parameters
    ----------
    pred
        One row per vote: ``y``, ``decision``, ``p_*``, ``majority_*``, ``pmvprob_*``, ``pmv``,
        ``building_id`` and slice columns (as in ``oof.parquet``).
    seed
        Seed of the bootstrap.

    Returns
    -------
    Evaluation
        The model, the majority class, and (on the rows where PMV exists) PMV binned and
        probabilistic PMV; confusion matrices, reliability, slices.
    """
    y, decision = oof.labels(pred)
    proba = oof.probabilities(pred)
    groups = pred["building_id"].to_numpy(dtype=np.int64)
    has_pmv = pred["pmv"].notna().to_numpy()
    pmv = pred["pmv"].to_numpy(dtype=np.float64)
    scores = classification_metrics(y, proba, decision)
    candidates = {"lightgbm": scores}
    if "logistic_cool" in pred.columns:  # cross-validation: the scikit-learn candidate too
        candidates["logistic_regression"] = classification_metrics(
            y, oof.probabilities(pred, "logistic")
        )
    return {
        "model": {**scores, "ci": bootstrap_interval(y, decision, groups, seed=seed)},
        "model_argmax": classification_metrics(y, proba),
        "candidates": candidates,
        "selected": max(candidates, key=lambda name: candidates[name]["macro_f1"]),
        "majority": classification_metrics(y, oof.probabilities(pred, "majority")),
        "pmv_rows": {
            "rows": int(has_pmv.sum()),
            "model": classification_metrics(y[has_pmv], proba[has_pmv], decision[has_pmv]),
            "pmv": classification_metrics(
                y[has_pmv], pmv_onehot(pmv[has_pmv]), pmv_class(pmv[has_pmv])
            ),
            "probabilistic_pmv": classification_metrics(
                y[has_pmv], oof.probabilities(pred, "pmvprob")[has_pmv]
            ),
        },
        "confusion": {
            "model": confusion(y, decision).tolist(),
            "pmv": confusion(y[has_pmv], pmv_class(pmv[has_pmv])).tolist(),
        },
        "reliability": reliability(y, proba),
        "class_share": {
            "true": np.bincount(y, minlength=3).tolist(),
            "predicted": np.bincount(decision, minlength=3).tolist(),
        },
        "slices": _slice_scores(pred, seed=seed),
    }


def _slice_scores(pred: pd.DataFrame, *, seed: int) -> dict[str, list[SliceScores]]:
    """The model's and PMV's scores on each slice, per slice column, largest slice first."""
    y, decision = oof.labels(pred)
    buildings = pred["building_id"].to_numpy(dtype=np.int64)
    has_pmv = pred["pmv"].notna().to_numpy()
    pmv_pred = pmv_class(pred["pmv"].to_numpy(dtype=np.float64))
    found: dict[str, list[SliceScores]] = {}
    for column, slices in oof.slices(pred, oof.SLICES).items():
        rows = []
        for value, i in slices.items():
            pmv_i = i[has_pmv[i]]
            entry: SliceScores = {
                "value": value,
                "rows": int(i.size),
                "buildings": int(np.unique(buildings[i]).size),
                "accuracy": float((decision[i] == y[i]).mean()),
                "macro_f1": macro_f1(y[i], decision[i]),
                "pmv_macro_f1": macro_f1(y[pmv_i], pmv_pred[pmv_i]) if pmv_i.size else None,
            }
            if i.size >= MIN_INTERVAL_ROWS:
                ci = bootstrap_interval(y[i], decision[i], buildings[i], seed=seed, reps=100)
                entry["ci"] = ci
            rows.append(entry)
        found[column] = sorted(rows, key=lambda r: -r["rows"])
    return found


def predictions_frame(model: ThermalModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Score labelled data with ``model`` and its stored baselines (see
    :mod:`conforto._scoring.oof`).
    """
    rows, y, groups = prepare(frame)
    return _predictions(model, rows, y, groups, encode(rows, model.spec))


def _predictions(
    model: ThermalModel, rows: pd.DataFrame, y: IntArray, groups: IntArray, matrix: FloatArray
) -> pd.DataFrame:
    """:func:`predictions_frame` of prepared rows and their model matrix."""
    proba = model.predict_matrix(matrix)
    pmv = comfort_features(rows, ["pmv_iso"])["pmv_iso"].to_numpy()
    baselines = model.manifest.baselines
    scores = {
        "p": proba,
        "majority": np.tile(np.asarray(baselines.majority), (len(y), 1)),
        "pmvprob": ProbabilisticPMV.from_dict(baselines.probabilistic_pmv).predict_proba(pmv),
    }
    return oof.build(
        rows, fold=-1, groups=groups, y=y, decision=model.decide(proba), pmv=pmv, scores=scores
    )


def weakest_slices(summary: Evaluation, n: int = WEAKEST) -> dict[str, list[SliceScores]]:
    """The ``n`` slices of each column with the lowest macro-F1 among those with at least
    :data:`MIN_INTERVAL_ROWS` rows, weakest first.
    """
    out = {}
    for column, rows in summary["slices"].items():
        judged = sorted(
            (r for r in rows if r["rows"] >= MIN_INTERVAL_ROWS), key=lambda r: r["macro_f1"]
        )
        if judged:
            out[column] = judged[:n]
    return out


def evaluate_model(model: ThermalModel, frame: pd.DataFrame, *, seed: int = 0) -> MetricsFile:
    """Metrics of a trained model on other labelled data (for example unseen buildings).

    Returns
    -------
    dict
        ``{"holdout": summary}`` (see :func:`summarise`), with the coverage of the model's
        prediction sets, its occupant-response heads against their baselines when it has them
        (``heads``), and the accuracy the live monitor would estimate without the votes
        (``estimate``).
    """
    rows, y, groups = prepare(frame)
    matrix = encode(rows, model.spec)
    pred = _predictions(model, rows, y, groups, matrix)
    summary = summarise(pred, seed=seed)
    summary["coverage"] = coverage_report(pred, calibration=model.conformal)
    if model.heads is not None:
        summary["heads"] = evaluate_heads(model.heads, matrix, rows, groups, seed=seed)
    recalibrated = model.confidence.recalibrated(oof.probabilities(pred), oof.labels(pred)[1])
    summary["estimate"] = estimate_report(pred, recalibrated)
    return MetricsFile(holdout=summary)


# ---------------------------------------------------------------------------------------- report


def _confusion_figure(cms: dict[str, list[list[int]]]) -> str:
    fig = new_figure(7.5, 3.2)
    for k, (name, cm) in enumerate(cms.items()):
        ax = fig.add_subplot(1, len(cms), k + 1)
        m = np.asarray(cm, dtype=float)
        share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(3):
            for j in range(3):
                ax.text(
                    j,
                    i,
                    f"{share[i, j]:.0%}\n{int(m[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if share[i, j] > 0.5 else "black",
                )
        ax.set_xticks(range(3), CLASS_NAMES)
        ax.set_yticks(range(3), CLASS_NAMES)
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual vote")
        ax.set_title(name)
    return figure_uri(fig)


def _reliability_figure(rel: dict[str, list[float]]) -> str:
    fig = new_figure(4.2, 3.4)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="#999", linestyle=":", label="perfect")
    for k, name in enumerate(CLASS_NAMES):
        ax.plot(rel[f"predicted_{k}"], rel[f"observed_{k}"], marker="o", label=name)
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_title("reliability")
    ax.legend(fontsize=8)
    return figure_uri(fig)


def _slices_figure(slices: dict[str, list[SliceScores]]) -> str:
    entries = [
        (f"{col}: {r['value']}", r)
        for col, rows in slices.items()
        for r in rows
        if r["rows"] >= MIN_INTERVAL_ROWS
    ]
    fig = new_figure(7.5, 0.22 * len(entries) + 1.0)
    ax = fig.add_subplot()
    labels = [e[0] for e in entries]
    f1 = [e[1]["macro_f1"] for e in entries]
    lo = [
        e[1]["macro_f1"] - e[1].get("ci", {}).get("macro_f1", (e[1]["macro_f1"],) * 2)[0]
        for e in entries
    ]
    hi = [
        e[1].get("ci", {}).get("macro_f1", (e[1]["macro_f1"],) * 2)[1] - e[1]["macro_f1"]
        for e in entries
    ]
    pos = np.arange(len(entries))
    ax.barh(pos, f1, xerr=[lo, hi], color="#4c72b0", label="model")
    pmv = [e[1]["pmv_macro_f1"] if e[1]["pmv_macro_f1"] is not None else np.nan for e in entries]
    ax.scatter(pmv, pos, color="#dd8452", zorder=3, label="PMV", s=14)
    ax.set_yticks(pos, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("macro-F1 (95 % bootstrap interval over buildings)")
    ax.legend(fontsize=8)
    return figure_uri(fig)


def _dissatisfied_figure(entry: HeadEvaluation) -> str:
    """Reliability of P(dissatisfied) and of ISO 7730's PPD/100 on the same votes."""
    fig = new_figure(5.2, 4.2)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="#999999", linestyle=":", label="perfectly calibrated")
    for (name, curve), color in zip(
        entry["reliability"].items(), ("#4c72b0", "#dd8452"), strict=False
    ):
        table = entry["scores"]
        scores = table["model on the PPD/100 rows"] if name == "model" else table[name]
        label = f"{'conforto' if name == 'model' else name} (Brier {scores['brier']:.3f})"
        ax.plot(curve["predicted"], curve["observed"], marker="o", color=color, label=label)
    ax.set_xlabel("predicted share dissatisfied (votes ±2, ±3)")
    ax.set_ylabel("observed share")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    return figure_uri(fig)


def _coverage_figure(report: CoverageReport) -> str:
    """Coverage and mean set size against the nominal level; slice coverage at 0.9."""
    slices = sum(e["within"] is not None for rows in report["slices"].values() for e in rows)
    fig = new_figure(9.0, max(3.6, 0.16 * slices + 1.2))
    curve, sets = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    levels = np.asarray(report["curve"]["levels"])
    curve.plot([0.5, 1.0], [0.5, 1.0], color="#999", linestyle=":", label="nominal")
    curve.plot(levels, report["curve"]["coverage"], color="#4c72b0", label="coverage")
    curve.set_xlabel("nominal level")
    curve.set_ylabel("share of votes inside the set")
    size = curve.twinx()
    size.plot(levels, report["curve"]["mean_size"], color="#dd8452", label="mean set size")
    size.set_ylabel("mean set size [classes]")
    size.set_ylim(1, 3)
    curve.legend(loc="upper left", fontsize=8)
    size.legend(loc="lower right", fontsize=8)
    at = report["levels"].index(0.9) if 0.9 in report["levels"] else 0
    entries = [
        (f"{column}: {e['value']}"[:40], e["coverage"][at])
        for column, rows in report["slices"].items()
        for e in rows
        if e["within"] is not None
    ]
    level = report["levels"][at]
    sets.axvspan(level - 0.05, level + 0.05, color="#55a868", alpha=0.15)
    sets.axvline(level, color="black", lw=1)
    sets.scatter([c for _, c in entries], range(len(entries)), color="#4c72b0", s=14)
    sets.set_yticks(range(len(entries)), [name for name, _ in entries], fontsize=6)
    sets.invert_yaxis()
    sets.set_xlabel(f"coverage at {level:.2f}, slices ≥ 1,000 votes")
    return figure_uri(fig)


def _adaptation_figure(summary: AdaptationSummary) -> str:
    """The learning curve: what site adaptation changes, by number of earlier votes."""
    buckets = summary["buckets"]
    panels = [
        ("macro-F1 gain", [b["macro_f1_gain"] for b in buckets]),
        ("log-loss change [nats]", [b["log_loss_change"] for b in buckets]),
    ]
    if all("dissatisfied_brier_change" in b for b in buckets):
        brier = [b["dissatisfied_brier_change"] for b in buckets]
        panels.append(("dissatisfied Brier change", brier))
    fig = new_figure(4.0 * len(panels), 3.2)
    for k, (label, differences) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        values = np.array([d["value"] for d in differences])
        low = values - np.array([d["low"] for d in differences])
        high = np.array([d["high"] for d in differences]) - values
        ax.errorbar(range(len(buckets)), values, yerr=[low, high], marker="o", capsize=3)
        ax.axhline(0, color="#999", linestyle=":")
        ax.set_xticks(range(len(buckets)), [b["bucket"] for b in buckets])
        ax.set_xlabel("earlier votes of the site")
        ax.set_ylabel("adapted − zero-shot")
        ax.set_title(label)
    return figure_uri(fig)


def _importance_figure(importance: dict[str, float]) -> str:
    items = sorted(importance.items(), key=lambda kv: kv[1])[-20:]
    fig = new_figure(5.0, 0.22 * len(items) + 0.8)
    ax = fig.add_subplot()
    ax.barh([k for k, _ in items], [v for _, v in items], color="#55a868")
    ax.set_xlabel("total gain")
    ax.tick_params(labelsize=7)
    ax.set_title("feature importance")
    return figure_uri(fig)


def write_evaluation(
    metrics: MetricsFile, out: Path, *, manifest: Manifest, title: str
) -> dict[str, Path]:
    """Write ``metrics.json``, ``report.html`` (with plots) and ``MODEL_CARD.md`` into ``out``.

    Parameters
    ----------
    metrics
        ``{"cv": summary}`` or ``{"holdout": summary}`` plus optional ``random_split``.
    out
        Destination folder.
    manifest
        The model's manifest (features, importance, data, config).
    title
        Heading of the report.

    Returns
    -------
    dict
        Paths written.
    """
    summary = metrics["cv"] if "cv" in metrics else metrics["holdout"]
    figures = {
        "confusion": _confusion_figure(
            {
                "model": summary["confusion"]["model"],
                "PMV (ISO 7730), rows with PMV": summary["confusion"]["pmv"],
            }
        ),
        "reliability": _reliability_figure(summary["reliability"]),
        "slices": _slices_figure(summary["slices"]),
    }
    if "coverage" in summary:
        figures["coverage"] = _coverage_figure(summary["coverage"])
    dissatisfied = summary.get("heads", {}).get("dissatisfied")
    if dissatisfied is not None and "reliability" in dissatisfied:
        figures["dissatisfied"] = _dissatisfied_figure(dissatisfied)
    if "adaptation" in summary:
        figures["adaptation"] = _adaptation_figure(summary["adaptation"])
    importance = manifest.booster.feature_importance_gain
    if importance:
        figures["importance"] = _importance_figure(importance)
    context = {
        "title": title,
        "s": summary,
        "metrics": metrics,
        "manifest": manifest,
        "figures": figures,
        "weakest": weakest_slices(summary),
        "coverage_misses": coverage_misses(summary["coverage"]) if "coverage" in summary else [],
        "tolerance": TOLERANCE,
    }
    paths = {
        "metrics.json": atomic_write_json(out / "metrics.json", metrics),
        "report.html": atomic_write_text(out / "report.html", render("report.html", **context)),
        "MODEL_CARD.md": atomic_write_text(
            out / "MODEL_CARD.md", render("model_card.md", **context)
        ),
    }
    return paths
