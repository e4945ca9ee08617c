"""The occupant-response heads on synthetic votes whose answers follow them: trained,
cross-fitted, judged, stored and loaded back; skipped without answers; the gate's checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from conforto._data.load import load_dataset
from conforto._lifecycle.gate import GateConfig, run_gate
from conforto._lifecycle.gate_checks import head_checks
from conforto._model.heads import COLUMNS, Heads, calibrated
from conforto._model.inputs import build_spec, encode, prepare
from conforto._training.booster import TrainConfig, base_params, group_folds
from conforto._training.heads import (
    HeadEvaluation,
    SensationFit,
    apply_baselines,
    evaluate_heads,
    fit_baselines,
    scores,
    targets,
    train_heads,
)
from tests.factories import make_frames
from tests.unit.test_gate import PASSING, make_oof

if TYPE_CHECKING:
    from pathlib import Path


def _answers(measurements: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    """Answers that follow the vote: unacceptable when it is far from neutral, a preference
    against its sign; one in ten answers at random, a quarter of the rows without answers."""
    rng = np.random.default_rng(seed)
    vote = measurements["thermal_sensation"].to_numpy()
    far = np.abs(vote) >= 2
    unacceptable = np.where(rng.random(len(vote)) < 0.1, ~far, far)
    preference = np.where(vote > 0, "cooler", np.where(vote < 0, "warmer", "no change"))
    noise = rng.random(len(vote)) < 0.1
    preference[noise] = rng.choice(["cooler", "no change", "warmer"], noise.sum())
    missing = rng.random(len(vote)) < 0.25
    out = measurements.copy()
    acceptability = np.where(unacceptable, "unacceptable", "acceptable").astype(object)
    acceptability[missing] = None
    out["thermal_acceptability"] = acceptability
    preference = preference.astype(object)
    preference[missing] = None
    out["thermal_preference"] = preference
    return out


def _training(tmp_path: Path, answered: bool = True) -> SensationFit:
    measurements, metadata = make_frames(n=3000, buildings=15, seed=3)
    if answered:
        measurements = _answers(measurements)
    m, d = tmp_path / "m.csv", tmp_path / "d.csv"
    measurements.to_csv(m, index=False)
    metadata.to_csv(d, index=False)
    rows, _, groups = prepare(load_dataset(m, d).frame)
    spec = build_spec(rows)
    matrix = encode(rows, spec)
    fold_of = np.full(len(rows), -1, dtype=np.int64)
    for k, (_, test) in enumerate(group_folds(groups, 3, 0)):
        fold_of[test] = k
    params = {**base_params(TrainConfig(), 0), "num_leaves": 7, "min_data_in_leaf": 40}
    return SensationFit(matrix, rows, groups, spec, fold_of, [(params, 60)] * 3, (params, 60))


def test_targets_follow_the_database_answers() -> None:
    rows = pd.DataFrame(
        {
            "thermal_sensation": [-2.5, -1.6, 0.4, 2.0, 3.0],
            "thermal_acceptability": ["acceptable", " Unacceptable", None, "acceptable", "x"],
            "thermal_preference": ["warmer", "no change", "cooler", None, "cooler"],
        }
    )
    found = targets(rows)
    assert found["dissatisfied"].tolist() == [1.0, 1.0, 0.0, 1.0, 1.0]  # -2.5 rounds to -3
    assert np.array_equal(found["unacceptable"], [0, 1, np.nan, 0, np.nan], equal_nan=True)
    assert np.array_equal(found["preference"], [2, 1, 0, np.nan, 0], equal_nan=True)


def test_scores_of_known_probabilities() -> None:
    y = np.array([1, 0, 1, 0])
    proba = np.array([[0.2, 0.8], [0.9, 0.1], [0.5, 0.5], [0.6, 0.4]])
    got = scores(y, proba, np.array([1, 1, 2, 2]))
    assert got["log_loss"] == pytest.approx(-np.log([0.8, 0.9, 0.5, 0.6]).mean())
    assert got["brier"] == pytest.approx(np.mean([0.04, 0.01, 0.25, 0.16]))
    assert got["log_loss_ci"][0] <= got["log_loss"] <= got["log_loss_ci"][1]
    three = scores(np.array([0, 2]), np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]]), np.array([1, 2]))
    assert three["macro_f1"] == pytest.approx(2 / 3)  # "neutral" never occurs nor is predicted
    assert three["brier"] == pytest.approx(0.09 + 0.04 + 0.01)


def test_heads_learn_the_answers_and_beat_their_baselines(tmp_path: Path) -> None:
    fit = _training(tmp_path)
    matrix, rows, groups = fit.matrix, fit.rows, fit.groups
    heads, report, _ = train_heads(fit)
    assert heads is not None
    assert not isinstance(report, str)
    for name in ("dissatisfied", "unacceptable", "preference"):
        table = report[name]["scores"]
        assert table["model"]["log_loss"] < table["base rate"]["log_loss"] - 0.05, name
    preference = report["preference"]["scores"]
    assert preference["model"].get("macro_f1", 0) > preference["base rate"].get("macro_f1", 1)
    assert report["unacceptable"]["rows"] < len(rows)  # only the rows with an answer
    checks = head_checks(report)
    assert {c.group for c in checks} == {"responses"}
    assert any(c.name == "dissatisfied beats PPD/100" for c in checks)

    heads.save(tmp_path)
    loaded = Heads.load(tmp_path)
    assert loaded.baselines == heads.baselines  # what evaluating on other data reads
    again = evaluate_heads(loaded, matrix, rows, groups)
    assert again["preference"]["rows"] == report["preference"]["rows"]
    # in sample, the final heads do at least as well as out of fold
    assert (
        again["preference"]["scores"]["model"]["log_loss"]
        <= report["preference"]["scores"]["model"]["log_loss"]
    )
    answers = loaded.predict(matrix[:50])
    assert answers.shape == (50, len(COLUMNS))
    assert np.allclose(answers, heads.predict(matrix[:50]))
    assert np.allclose(answers[:, 2:].sum(axis=1), 1.0)  # the preference's three
    assert ((answers >= 0) & (answers <= 1)).all()


def test_without_answers_there_are_no_heads(tmp_path: Path) -> None:
    heads, report, cv = train_heads(_training(tmp_path, answered=False))
    assert heads is None
    assert cv == {}
    assert isinstance(report, str)
    assert "unacceptable: 0 answers" in report
    assert head_checks(None) == []


def test_a_head_worse_than_its_baseline_blocks_validation() -> None:
    def entry(log_loss: float) -> Any:
        return {"log_loss": log_loss, "rows": 1000}

    report: dict[str, HeadEvaluation] = {
        "unacceptable": {
            "rows": 1000,
            "scores": {"model": entry(0.60), "logistic on PMV": entry(0.55)},
        },
        "preference": {
            "rows": 1000,
            "scores": {
                "model": entry(0.80),
                "logistic on PMV": entry(0.9),
                "base rate": entry(0.7),  # reported, not judged: the gate holds heads to physics
            },
        },
    }
    checks = head_checks(report)
    failed = [c for c in checks if not c.passed]
    assert [c.name for c in failed] == ["unacceptable beats logistic on PMV"]
    assert failed[0].value == pytest.approx(-0.05)
    gate = run_gate("1", make_oof(seed=1), PASSING, GateConfig(), extra=checks)
    assert not gate.passed
    assert "unacceptable beats logistic on PMV" in gate.reason()


def test_calibrated_binary_and_multiclass() -> None:
    binary = calibrated(np.array([0.0, 2.0]), 2.0)
    assert np.allclose(binary[:, 1], [0.5, 1 / (1 + np.exp(-1.0))])
    multi = calibrated(np.array([[0.0, 0.0, 0.0]]), 1.0)
    assert np.allclose(multi, 1 / 3)


def test_stored_baselines_answer_as_the_fitted_logistic_model() -> None:
    from sklearn.linear_model import LogisticRegression

    from conforto._model.heads import SPECS

    rng = np.random.default_rng(0)
    pmv = rng.normal(0, 1, 500)
    y = np.where(pmv > 0.5, 0, np.where(pmv < -0.5, 2, 1))  # warm → cooler, cool → warmer
    y[rng.random(500) < 0.2] = 1
    preference = next(s for s in SPECS if s.name == "preference")
    fitted = fit_baselines(preference, y, pmv)
    applied = apply_baselines(preference, fitted, np.append(pmv[:5], np.nan), np.zeros(6))
    expected = LogisticRegression().fit(pmv[:, None], y).predict_proba(pmv[:5, None])
    np.testing.assert_allclose(applied["logistic on PMV"][:5], expected, atol=1e-9)
    np.testing.assert_allclose(applied["logistic on PMV"][5], fitted["base_rate"])  # no PMV
    unacceptable = next(s for s in SPECS if s.name == "unacceptable")
    binary = fit_baselines(unacceptable, (np.abs(pmv) > 1).astype(np.int64), pmv)
    got = apply_baselines(unacceptable, binary, pmv[:3], np.zeros(3))["logistic on PMV"]
    model = LogisticRegression().fit(pmv[:, None], (np.abs(pmv) > 1).astype(np.int64))
    np.testing.assert_allclose(got, model.predict_proba(pmv[:3, None]), atol=1e-9)
