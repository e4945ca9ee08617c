"""The gate's checks on out-of-fold predictions built to be good, worse or regressing."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from conforto._lifecycle.gate import GateConfig, run_gate
from conforto._lifecycle.gate_checks import (
    baseline_checks,
    coverage_checks,
    paired_bootstrap,
    slice_checks,
)
from conforto._lifecycle.gate_report import write_gate_report
from conforto._model.behaviour import BehaviourCheck
from conforto.errors import DataError

if TYPE_CHECKING:
    from pathlib import Path

CLASSES = ("cool", "neutral", "warm")
PASSING = [BehaviourCheck("room", True, "ok")]


def make_oof(rows: int = 6000, skill: float = 2.0, seed: int = 0) -> pd.DataFrame:
    """Out-of-fold predictions whose probabilities lean towards the true class by ``skill``."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=rows, p=[0.25, 0.45, 0.30])
    logits = rng.normal(size=(rows, 3))
    logits[np.arange(rows), y] += skill
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pmv = np.where(rng.random(rows) < 0.7, (y - 1) * 0.6 + rng.normal(0, 1.2, rows), np.nan)
    oof = pd.DataFrame(
        {
            "fold": rng.integers(0, 5, rows),
            "building_id": rng.integers(0, 120, rows),
            "y": y,
            "decision": proba.argmax(axis=1),
            "pmv": pmv,
            "season": rng.choice(["winter", "summer", "spring"], rows),
            "climate": rng.choice(["arid", "temperate"], rows),
        }
    )
    for i, name in enumerate(CLASSES):
        oof[f"p_{name}"] = proba[:, i]
        oof[f"majority_{name}"] = [0.25, 0.45, 0.30][i]
        oof[f"pmvprob_{name}"] = 1 / 3
    return oof


def degrade(oof: pd.DataFrame, where: pd.Series | np.ndarray) -> pd.DataFrame:
    """Predictions made useless (uniform, always neutral) on the rows ``where`` selects."""
    worse = oof.copy()
    worse.loc[where, "decision"] = 1
    for name in CLASSES:
        worse.loc[where, f"p_{name}"] = 1 / 3
    return worse


def test_identical_predictions_have_zero_difference() -> None:
    oof = make_oof()
    deltas = paired_bootstrap(
        oof["y"].to_numpy(), oof, oof, oof["building_id"].to_numpy(), reps=200, seed=0
    )
    assert np.allclose(deltas["macro_f1"], 0.0)
    assert np.allclose(deltas["log_loss"], 0.0)


def test_paired_bootstrap_sees_a_better_model() -> None:
    oof = make_oof()
    worse = degrade(oof, oof.index % 3 == 0)
    deltas = paired_bootstrap(
        oof["y"].to_numpy(), oof, worse, oof["building_id"].to_numpy(), reps=300, seed=0
    )
    assert (deltas["macro_f1"] > 0).all()
    assert (deltas["log_loss"] < 0).all()


def test_skilful_model_beats_the_baselines() -> None:
    checks, comparison = baseline_checks(make_oof(), GateConfig())
    assert all(c.passed for c in checks), checks
    assert comparison["model"]["macro_f1"] > comparison["majority"]["macro_f1"]


def test_model_without_skill_fails_the_baselines() -> None:
    oof = make_oof(skill=0.0).assign(decision=1)  # says "neutral" to everyone, like the majority
    checks, _ = baseline_checks(oof, GateConfig())
    assert {c.name for c in checks if not c.passed} == {
        "beats PMV",
        "beats the majority class",
        "beats the probabilistic PMV",
    }


def test_first_model_is_judged_on_baselines_coverage_and_behaviour() -> None:
    report = run_gate("1", make_oof(), PASSING, GateConfig())
    assert report.passed
    assert report.champion is None
    assert {c.group for c in report.checks} == {"baselines", "coverage", "behaviour"}


def test_sets_that_miss_their_level_reject() -> None:
    oof = make_oof()
    proba = oof[[f"p_{name}" for name in CLASSES]].to_numpy()
    # a decision rule at odds with the probabilities puts an unlikely class in every set:
    # the sets cover far more votes than their level says
    (check,) = coverage_checks(oof.assign(decision=proba.argmin(axis=1)), GateConfig())
    assert not check.passed
    assert check.value is not None
    assert check.value > 0.015
    assert "inside their 0.90 set" in check.detail
    assert coverage_checks(oof, GateConfig())[0].passed


def test_worse_challenger_is_rejected_against_the_champion() -> None:
    champion = make_oof()
    challenger = degrade(champion, champion.index % 4 == 0)
    report = run_gate("2", challenger, PASSING, GateConfig(), champion=("1", champion))
    assert not report.passed
    assert "not worse than the champion in macro-F1" in report.reason()
    failed = next(c for c in report.failed if c.name.endswith("macro-F1"))
    assert failed.value is not None
    assert failed.value < -0.01


def test_equal_challenger_passes_non_inferiority() -> None:
    champion = make_oof(seed=1)
    report = run_gate("2", champion.copy(), PASSING, GateConfig(), champion=("1", champion))
    assert report.passed, report.reason()


def test_slice_regression_is_rejected_naming_the_slice() -> None:
    champion = make_oof(rows=20000)
    challenger = degrade(champion, (champion["season"] == "winter") & (champion.index % 3 == 0))
    config = GateConfig(  # only the slice is judged: a uniform slice skews the sets' coverage too
        champion_margin_macro_f1=0.2, champion_margin_log_loss=0.2, coverage_tolerance=0.5
    )
    report = run_gate("2", challenger, PASSING, config, champion=("1", champion))
    assert [c.name for c in report.failed] == ["no slice regresses"]
    assert "season=winter" in report.failed[0].detail
    assert "season=summer" not in report.failed[0].detail


def test_small_slices_are_not_judged() -> None:
    champion = make_oof(rows=3000)
    challenger = degrade(champion, champion["season"] == "winter")
    checks, table = slice_checks(challenger, champion, GateConfig(slice_min_rows=5000))
    assert checks[0].passed
    assert table == []


def test_failed_behaviour_rejects() -> None:
    report = run_gate("1", make_oof(), [BehaviourCheck("cold room", False, "warm")], GateConfig())
    assert report.reason() == "cold room"


def test_champion_on_other_rows_is_refused() -> None:
    with pytest.raises(DataError, match="not on the challenger's rows"):
        run_gate("2", make_oof(), PASSING, GateConfig(), champion=("1", make_oof(rows=100)))


def test_gate_report_is_written(tmp_path: Path) -> None:
    champion = make_oof()
    report = run_gate(
        "2",
        degrade(champion, champion.index % 4 == 0),
        PASSING,
        GateConfig(),
        champion=("1", champion),
    )
    paths = write_gate_report(report, tmp_path)
    saved = json.loads(paths["gate.json"].read_text())
    assert saved["passed"] is False
    assert saved["champion"] == "1"
    assert any(not c["passed"] for c in saved["checks"])
    html = paths["gate.html"].read_text()
    assert "REJECTED" in html
    assert "data:image/png;base64," in html


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="confidence"):
        GateConfig(confidence=1.5)
