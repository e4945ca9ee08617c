"""The data layer on the real ASHRAE Global Thermal Comfort Database II dev files."""

from __future__ import annotations

import gzip
import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from conforto._data.load import NO_DATE, ensure_group_column, load_dataset
from conforto._data.validation import validate_dataset
from conforto._physics.features import comfort_features
from tests.cli import conforto_cli

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dataset(dev_paths: tuple[Path, Path]):
    return load_dataset(*dev_paths)


def test_real_data_loads_and_joins(dataset) -> None:
    frame = dataset.frame
    assert len(frame) > 90_000
    assert frame["climate"].notna().mean() > 0.99
    assert "desert (hot arid)" not in set(frame["climate"].dropna())
    assert not any("\u00a0" in c for c in frame["climate"].dropna().unique())


def test_real_data_passes_validation_with_explained_warnings(dataset) -> None:
    report = validate_dataset(dataset)
    assert report.ok, report.summary()
    duplicates = next(c for c in report.checks if c.name == "duplicates")
    assert 2_000 < duplicates.rows < 3_500  # ~2,700 id-only duplicates in the dev data
    assert next(c for c in report.checks if c.name == "plausible:vel").status == "warn"


def test_group_column_covers_every_row(dataset) -> None:
    grouped = ensure_group_column(dataset.frame)
    assert grouped["mes_ano"].notna().all()
    has_date = dataset.frame["timestamp"].notna()
    assert (grouped.loc[~has_date, "mes_ano"] == NO_DATE).all()
    assert grouped.loc[has_date, "mes_ano"].str.fullmatch(r"\d{4}-\d{2}").all()


def test_computed_pmv_agrees_with_database(dataset) -> None:
    frame = dataset.frame
    features = comfort_features(frame, ["pmv_iso"])
    both = features["pmv_iso"].notna() & frame["pmv"].notna()
    assert both.sum() > 40_000
    diff = np.abs(features.loc[both, "pmv_iso"] - frame.loc[both, "pmv"])
    assert float(diff.median()) < 0.02


def test_cli_validate_exit_codes_on_real_data(
    sample_paths: tuple[Path, Path], tmp_path: Path
) -> None:
    """The command's exit codes and messages, on a building sample of the real data (the whole
    of it passes validation above)."""
    m, d = sample_paths
    ok = conforto_cli(
        "data",
        "validate",
        "--measurements",
        str(m),
        "--metadata",
        str(d),
        "--out",
        str(tmp_path / "ok"),
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "ok" / "validation.json").read_text())["ok"] is True

    measurements = pd.read_csv(m, low_memory=False)
    renamed = tmp_path / "renamed.csv.gz"
    with gzip.open(renamed, "wt") as handle:
        measurements.rename(columns={"rh": "rh_renamed"}).to_csv(handle, index=False)
    bad = conforto_cli(
        "data",
        "validate",
        "--measurements",
        str(renamed),
        "--metadata",
        str(d),
        "--out",
        str(tmp_path / "renamed"),
    )
    assert bad.returncode == 1
    assert "rh: required column is missing" in bad.stdout

    humid = tmp_path / "humid.csv.gz"
    with gzip.open(humid, "wt") as handle:
        rh = measurements["rh"].where(measurements.index % 1000 != 0, 104.0)
        measurements.assign(rh=rh).to_csv(handle, index=False)
    over = conforto_cli(
        "data",
        "validate",
        "--measurements",
        str(humid),
        "--metadata",
        str(d),
        "--out",
        str(tmp_path / "humid"),
    )
    assert over.returncode == 1
    assert "rh: impossible: Relative humidity" in over.stdout
