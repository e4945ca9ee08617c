"""Drift statistics, samples and season matching on synthetic data with known answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from conforto._model.inputs import Feature, FeatureSpec
from conforto._monitor.drift import DriftReport, FeatureDrift, check_drift, compare, write_drift
from conforto._monitor.sample import NO_SEASON, Sample, season_weights
from conforto._monitor.thresholds import MonitorConfig
from conforto._monitor.window import Described, FrameSource, Span, parse_when
from conforto.errors import ConfigError
from tests.factories import bare_model, manifest_of

if TYPE_CHECKING:
    from pathlib import Path

    from conforto._model.artifact import ThermalModel

NUMERIC, CATEGORICAL = ["ta", "rh"], ["season", "cooling_type"]
CONFIG = MonitorConfig()


def rooms(n: int, seed: int, *, ta: float = 24.0, season: str | None = None) -> pd.DataFrame:
    """Rooms whose air temperature depends on the season (summer 4 °C warmer than winter)."""
    rng = np.random.default_rng(seed)
    seasons = np.array([season] * n) if season else rng.choice(["summer", "winter"], n)
    return pd.DataFrame(
        {
            "ta": ta + np.where(seasons == "summer", 2.0, -2.0) + rng.normal(0, 1.5, n),
            "rh": rng.normal(50, 10, n),
            "season": seasons,
            "cooling_type": rng.choice(["air conditioned", "naturally ventilated"], n),
            "month": np.where(seasons == "summer", 1, 7),
        }
    )


def judge(reference: pd.DataFrame, current: pd.DataFrame, **kw: Any) -> dict[str, Any]:
    before = Sample().add(reference, NUMERIC, CATEGORICAL, kw.get("weights"))
    now = Sample().add(current, NUMERIC, CATEGORICAL)
    report = compare(
        before, now, NUMERIC, CATEGORICAL, CONFIG, model_version="1", described=({}, {})
    )
    return report.to_json()


def test_a_drift_report_reads_back_from_its_json() -> None:
    reference, current = rooms(2000, 1), rooms(800, 2, season="summer")
    before = Sample().add(reference, NUMERIC, CATEGORICAL)
    now = Sample().add(current, NUMERIC, CATEGORICAL)
    described: tuple[Described, Described] = (
        {"source": "training"},
        {"source": "prediction_log", "from": "2026-11-01"},
    )
    report = compare(
        before, now, NUMERIC, CATEGORICAL, CONFIG, model_version="4", described=described
    )
    again = DriftReport.from_json(json.loads(json.dumps(report.to_json())), CONFIG.drift_share)
    assert again == report
    assert again.drifted_features == report.drifted_features
    assert again.current["rows"] == 800


def test_times_are_durations_ago_or_iso() -> None:
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    assert parse_when("12h", now) == datetime(2026, 11, 29, tzinfo=UTC)
    assert parse_when("2w", now) == datetime(2026, 11, 15, 12, tzinfo=UTC)
    assert parse_when("2026-11-01T08:00+01:00") == datetime(2026, 11, 1, 7, tzinfo=UTC)
    with pytest.raises(ConfigError, match="not a time"):
        parse_when("last week")
    with pytest.raises(ConfigError, match="earlier than --until"):
        Span.parse("1d", "2d")


def test_a_sample_read_in_chunks_equals_one_read_whole() -> None:
    frame = rooms(1000, 0)
    whole = Sample().add(frame, NUMERIC, CATEGORICAL)
    chunked = Sample()
    for start in range(0, 1000, 300):
        chunked.add(frame.iloc[start : start + 300], NUMERIC, CATEGORICAL)
    assert chunked.rows == whole.rows == 1000
    for name in NUMERIC:
        assert np.array_equal(chunked.numeric[name][0], whole.numeric[name][0])
        assert np.allclose(chunked.numeric[name][1], whole.numeric[name][1])
    assert chunked.categorical == whole.categorical
    assert chunked.seasons == whole.seasons
    assert whole.effective_rows("ta") == 1000


def test_weights_lower_the_effective_rows_and_missing_values_count_nowhere() -> None:
    frame = pd.DataFrame({"ta": [20.0, 21.0, None, 22.0], "season": [None, "summer", "x", "x"]})
    sample = Sample().add(frame, ["ta"], [], weights=np.array([1.0, 1.0, 1.0, 3.0]))
    assert sample.effective_rows("ta") == pytest.approx(25 / 11)  # (1+1+3)² / (1+1+9)
    assert dict(zip(*sample.numeric["ta"], strict=True)) == {20.0: 1.0, 21.0: 1.0, 22.0: 3.0}
    assert sample.seasons == {NO_SEASON: 1.0, "summer": 1.0, "x": 4.0}


def test_the_same_distribution_does_not_drift_and_a_shift_does() -> None:
    same = judge(rooms(3000, 1), rooms(1000, 2))
    assert same["drifted_features"] == []
    assert same["dataset_drift"] is False
    shifted = judge(rooms(3000, 1), rooms(1000, 2).assign(ta=lambda f: f["ta"] + 1.5))
    assert shifted["drifted_features"] == ["ta"]
    assert shifted["drift_share"] == 0.25
    assert shifted["dataset_drift"] is False  # one input of four
    features = {f["name"]: f for f in shifted["features"]}
    assert features["ta"]["method"] == features["season"]["method"] == "psi"
    assert features["ta"]["statistic"] > features["ta"]["threshold"] == 0.1
    assert features["rh"]["statistic"] < 0.05


def test_half_the_inputs_drifting_is_data_set_drift() -> None:
    current = rooms(1000, 2).assign(ta=lambda f: f["ta"] + 3.0, cooling_type="mixed mode")
    found = judge(rooms(3000, 1), current)
    assert found["drifted_features"] == ["cooling_type", "ta"]  # most over its threshold first
    assert found["dataset_drift"] is True


def test_psi_is_zero_for_equal_shares_and_grows_with_a_shift() -> None:
    from conforto._monitor.drift import psi

    assert psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0)
    small, large = psi([50, 50], [55, 45]), psi([50, 50], [90, 10])
    assert 0 < small < 0.1 < large
    assert np.isfinite(psi([50, 50], [100, 0]))  # an empty bin is floored, not infinite


def test_rare_levels_are_folded_so_that_their_noise_is_not_drift() -> None:
    rng = np.random.default_rng(5)
    many = [f"level {i}" for i in range(40)]
    reference = pd.DataFrame({"country": rng.choice(many, 5000, p=[0.61] + [0.01] * 39)})
    current = pd.DataFrame({"country": rng.choice(many, 600, p=[0.61] + [0.01] * 39)})
    found = judge_one(reference, current, "country")
    assert found.statistic is not None
    assert found.statistic < 0.05
    assert not found.drifted


def judge_one(reference: pd.DataFrame, current: pd.DataFrame, name: str) -> FeatureDrift:
    from conforto._monitor.drift import categorical_drift

    before = Sample().add(reference, [], [name])
    now = Sample().add(current, [], [name])
    return categorical_drift(name, before, now, MonitorConfig(min_rows=100))


def test_too_few_values_never_alarm() -> None:
    found = judge(rooms(3000, 1), rooms(50, 2).assign(ta=lambda f: f["ta"] + 10))
    features = {f["name"]: f for f in found["features"]}
    assert features["ta"]["enough_data"] is False
    assert features["ta"]["drifted"] is False
    assert found["dataset_drift"] is False


def test_season_matching_compares_summer_with_summer() -> None:
    reference, summer = rooms(4000, 1), rooms(1000, 2, season="summer")
    assert "ta" in judge(reference, summer)["drifted_features"]
    now = Sample().add(summer, NUMERIC, CATEGORICAL)
    weights, by = season_weights(reference, now)
    assert by == "season"
    assert (weights[reference["season"] == "winter"] == 0).all()
    assert weights.sum() == pytest.approx(len(reference))
    assert judge(reference, summer, weights=weights)["drifted_features"] == []


def test_without_seasons_the_months_are_matched() -> None:
    reference = rooms(4000, 1)
    current = rooms(1000, 2, season="summer").drop(columns="season")
    weights, by = season_weights(reference, Sample().add(current, NUMERIC, []))
    assert by == "month"
    assert (weights[reference["month"] == 7] == 0).all()


def _model(tmp_path: Path) -> ThermalModel:
    spec = FeatureSpec(
        (Feature("ta", "numeric"), Feature("rh", "numeric"), Feature("season", "categorical"))
    )
    rooms(3000, 1).to_parquet(tmp_path / "drift_reference.parquet")
    return bare_model(spec, manifest_of(), tmp_path)


def test_drift_check_writes_its_json_and_html(tmp_path: Path) -> None:
    current = FrameSource(rooms(800, 2, season="summer"), "summer data")
    report, before, now = check_drift(
        _model(tmp_path), current, season_matched=True, model_version="3"
    )
    assert report.reference["season_matched"] == "season"
    assert report.drifted_features == []
    paths = write_drift(report, before, now, tmp_path / "out")
    data = pd.read_json(paths["drift.json"], typ="series")
    assert set(data.index) == {
        "model_version",
        "reference",
        "current",
        "features",
        "drifted_features",
        "drift_share",
        "dataset_drift",
    }
    assert data["current"] == {"source": "summer data", "from": None, "until": None, "rows": 800}
    assert "data:image/png;base64," in paths["drift.html"].read_text()
