from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from conforto._data.load import NO_DATE, ensure_group_column, fingerprint, load_dataset, read_table
from conforto.errors import ColumnError, DataSourceError, DataValidationError

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_read_table_reads_every_format(
    tmp_path: Path, frames: tuple[pd.DataFrame, pd.DataFrame], suffix: str
) -> None:
    measurements, _ = frames
    path = tmp_path / f"m{suffix}"
    if suffix == ".parquet":
        measurements.to_parquet(path)
    else:
        measurements.to_csv(path, index=False)
    table = read_table(path)
    assert len(table) == len(measurements)
    assert table["ta"].dtype == np.float64
    np.testing.assert_allclose(table["ta"], measurements["ta"])


def test_read_table_resolves_portuguese_names(tmp_path: Path) -> None:
    path = tmp_path / "pt.csv"
    path.write_text("Temperatura do ar (°C),Umidade relativa (%)\n22.5,50\n", encoding="utf-8")
    assert list(read_table(path).columns) == ["ta", "rh"]


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="data file not found"):
        read_table(tmp_path / "nope.csv")


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataSourceError, match="is empty"):
        read_table(path)


def test_header_only_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("ta,rh\n")
    with pytest.raises(DataSourceError, match="header but no rows"):
        read_table(path)


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv.gz"
    path.write_bytes(b"this is not gzip")
    with pytest.raises(DataSourceError, match="cannot read"):
        read_table(path)


def test_unknown_suffix_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"x")
    with pytest.raises(DataSourceError, match=r"expected \.csv"):
        read_table(path)


def test_text_in_numeric_column_names_column_and_values(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("building_id,ta,rh\n1,22.5,50\n1,warm,55\n1,23,high\n")
    with pytest.raises(
        DataValidationError, match=r"'ta': 1 non-numeric values such as 'warm'.*'rh'"
    ):
        read_table(path)


def test_decimal_commas_get_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text('building_id,ta\n1,"22,5"\n')
    with pytest.raises(DataValidationError, match="decimal commas"):
        read_table(path)


def test_wrong_delimiter_is_explained(
    tmp_path: Path, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    path = tmp_path / "m.csv"
    frames[0].to_csv(path, sep=";", index=False)
    with pytest.raises(ColumnError, match="separated by ','"):
        load_dataset(path)


def test_load_dataset_joins_metadata_and_normalises(data_files: tuple[Path, Path]) -> None:
    dataset = load_dataset(*data_files)
    frame = dataset.frame
    assert {"climate", "cooling_type", "ta"} <= set(frame.columns)
    assert set(frame["climate"].dropna()) <= {"hot arid", "humid subtropical"}
    assert set(frame["season"].dropna()) <= {"summer", "winter", "autumn"}
    assert dataset.unmatched_buildings == []
    assert frame["record_id"].tolist() == sorted(frame["record_id"])  # file order kept


def test_load_dataset_reports_buildings_missing_from_metadata(
    tmp_path: Path, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    measurements, metadata = frames
    m, d = tmp_path / "m.csv", tmp_path / "d.csv"
    measurements.to_csv(m, index=False)
    metadata[metadata["building_id"] != 1].to_csv(d, index=False)
    dataset = load_dataset(m, d)
    assert dataset.unmatched_buildings == [1]
    assert dataset.frame.loc[dataset.frame["building_id"] == 1, "climate"].isna().all()


def test_load_dataset_refuses_duplicate_buildings(
    tmp_path: Path, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    measurements, metadata = frames
    m, d = tmp_path / "m.csv", tmp_path / "d.csv"
    measurements.to_csv(m, index=False)
    pd.concat([metadata, metadata.head(1)]).to_csv(d, index=False)
    with pytest.raises(DataValidationError, match="more than once"):
        load_dataset(m, d)


def test_load_dataset_names_missing_required_column(
    tmp_path: Path, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    m = tmp_path / "m.csv"
    frames[0].rename(columns={"rh": "rh_renamed"}).to_csv(m, index=False)
    with pytest.raises(ColumnError, match="'rh' \\(closest present: 'rh_renamed'\\)"):
        load_dataset(m)


def test_load_dataset_refuses_all_null_required_column(
    tmp_path: Path, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    m = tmp_path / "m.csv"
    frames[0].assign(met=np.nan).to_csv(m, index=False)
    with pytest.raises(DataValidationError, match="no values at all: 'met'"):
        load_dataset(m)


def test_ensure_group_column_adds_month_year_and_marks_missing() -> None:
    frame = pd.DataFrame({"timestamp": ["1995-05-18T00:00:00Z", None, "not a date", "2001-12-31"]})
    out = ensure_group_column(frame)
    assert out["mes_ano"].tolist() == ["1995-05", NO_DATE, NO_DATE, "2001-12"]
    assert "mes_ano" not in frame.columns


def test_ensure_group_column_keeps_existing_column() -> None:
    frame = pd.DataFrame({"timestamp": ["1995-05-18"], "mes_ano": ["custom"]})
    assert ensure_group_column(frame) is frame


def test_ensure_group_column_without_timestamp_gives_explicit_value() -> None:
    out = ensure_group_column(pd.DataFrame({"ta": [20.0, 21.0]}))
    assert out["mes_ano"].tolist() == [NO_DATE, NO_DATE]


def test_fingerprint_changes_with_content(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    measurements, _ = frames
    changed = measurements.copy()
    changed.loc[0, "ta"] = float(changed["ta"].iloc[0]) + 0.1
    assert fingerprint(measurements) == fingerprint(measurements.copy())
    assert fingerprint(measurements) != fingerprint(changed)
