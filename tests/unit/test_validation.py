from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from conforto._data.bounds import PHYSICAL_BOUNDS, Bounds
from conforto._data.categories import normalise_categories
from conforto._data.validation import (
    Check,
    ValidationReport,
    build_schema,
    validate_frame,
    write_validation,
)

if TYPE_CHECKING:
    from pathlib import Path


def _joined(frames: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    measurements, metadata = frames
    return normalise_categories(measurements.merge(metadata, on="building_id", how="left"))


def _check(report: ValidationReport, name: str) -> Check:
    return next(c for c in report.checks if c.name == name)


def test_clean_synthetic_data_passes(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    report = validate_frame(_joined(frames))
    assert report.ok, report.summary()
    assert report.warnings == []


def test_one_impossible_value_fails_and_names_column(
    frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    frame = _joined(frames)
    frame.loc[3, "rh"] = 130.0
    report = validate_frame(frame)
    assert not report.ok
    check = _check(report, "range:rh")
    assert (check.status, check.rows) == ("fail", 1)
    assert check.examples[0]["rh"] == 130.0
    assert "rh" in report.summary()
    assert "Relative humidity" in report.summary()


@pytest.mark.parametrize(
    ("column", "value"),
    [("vel", -0.1), ("clo", -1.0), ("met", -1.0), ("thermal_sensation", 3.5), ("ta", 70.0)],
)
def test_impossible_values_fail(
    frames: tuple[pd.DataFrame, pd.DataFrame], column: str, value: float
) -> None:
    frame = _joined(frames)
    frame.loc[0, column] = value
    assert _check(validate_frame(frame), f"range:{column}").status == "fail"


def test_implausible_values_only_warn(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    frame = _joined(frames)
    frame.loc[0, "vel"] = 3.0
    frame.loc[1, "ta"] = 42.0
    report = validate_frame(frame)
    assert report.ok
    assert _check(report, "plausible:vel").status == "warn"
    assert _check(report, "plausible:ta").rows == 1


def test_missing_required_column_fails(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    report = validate_frame(_joined(frames).drop(columns=["rh"]))
    assert not report.ok
    assert _check(report, "required:rh").status == "fail"


def test_all_null_required_column_fails(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    report = validate_frame(_joined(frames).assign(clo=np.nan))
    assert _check(report, "nulls:clo").status == "fail"


def test_data_quality_warnings(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    frame = _joined(frames)
    duplicate = frame.iloc[[0]].assign(record_id=999)
    frame = pd.concat([frame, duplicate], ignore_index=True)
    frame.loc[1:10, "vel"] = np.nan
    frame.loc[2, "cooling_type"] = "solar chimney"
    report = validate_frame(frame, unmatched_buildings=[42])
    assert report.ok
    assert (_check(report, "duplicates").status, _check(report, "duplicates").rows) == ("warn", 1)
    assert _check(report, "nulls:vel").status == "warn"
    assert _check(report, "metadata").status == "warn"
    assert "solar chimney" in _check(report, "domain:cooling_type").rule


def test_bounds_table_is_consistent() -> None:
    for bounds in PHYSICAL_BOUNDS.values():
        assert bounds.hard_min <= bounds.soft_min <= bounds.soft_max <= bounds.hard_max
    with pytest.raises(ValueError, match="not nested"):
        Bounds("°C", "broken", 0.0, 10.0, 20.0, 30.0)


def test_schema_uses_the_bounds_table() -> None:
    schema = build_schema(["rh", "ta"], severity="hard")
    assert set(schema.columns) == {"rh", "ta"}
    assert "0..100" in schema.columns["rh"].checks[0].error


def test_write_validation_writes_json_and_html(
    tmp_path: Path, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    frame = _joined(frames)
    frame.loc[0, "rh"] = -5.0
    json_path, html_path = write_validation(validate_frame(frame), tmp_path)
    data = json.loads(json_path.read_text())
    assert data["ok"] is False
    assert data["counts"]["fail"] == 1
    html = html_path.read_text()
    assert "FAILED" in html
    assert "range:rh" in html
    assert not list(tmp_path.glob(".*.tmp"))
