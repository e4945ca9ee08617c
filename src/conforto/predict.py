"""Batch prediction: CSV in, CSV out, streamed in chunks so memory stays flat.

Each output row matches one input row, in order: ``record_id`` when present,
``predicted_class``, calibrated ``p_cool``, ``p_neutral``, ``p_warm``, ``reason`` (empty when
scored, otherwise why the row was not scored) and ``flags`` (implausible values that were scored
as given, never clipped).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from conforto.artifact import ThermalModel
from conforto.bounds import PHYSICAL_BOUNDS
from conforto.categories import normalise_categories
from conforto.columns import NUMERIC, resolve_columns, resolve_name, validate_columns
from conforto.data import coerce_numeric, read_table
from conforto.errors import DataSourceError
from conforto.target import CLASSES

#: Inputs without which a row is not scored.
REQUIRED_INPUTS = ("ta",)
#: Inputs the API requires; in batch, rows missing them are scored and flagged.
EXPECTED_INPUTS = ("ta", "rh", "vel", "met", "clo")
CHUNK_ROWS = 200_000
OUTPUT_COLUMNS = (
    "record_id",
    "predicted_class",
    "p_cool",
    "p_neutral",
    "p_warm",
    "reason",
    "flags",
)


@dataclass
class PredictionSummary:
    """Counts of a batch prediction run."""

    rows: int = 0
    scored: int = 0
    flagged: int = 0


def _checks(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per-row reason (impossible values, missing ta) and flags (implausible, missing inputs)."""
    reasons = pd.Series("", index=frame.index, dtype=object)
    flags = pd.Series("", index=frame.index, dtype=object)

    def add(target: pd.Series, mask: pd.Series, text: pd.Series | str) -> None:
        if mask.any():
            sep = np.where(target[mask] == "", "", "; ")
            target[mask] = (
                target[mask] + sep + (text[mask] if isinstance(text, pd.Series) else text)
            )

    for name in REQUIRED_INPUTS:
        add(reasons, frame[name].isna(), f"missing {name}")
    for name, bounds in PHYSICAL_BOUNDS.items():
        if name not in frame.columns or name == "thermal_sensation":
            continue
        values = frame[name]
        impossible = (values < bounds.hard_min) | (values > bounds.hard_max)
        soft = ((values < bounds.soft_min) | (values > bounds.soft_max)) & ~impossible
        if impossible.any() or soft.any():  # format only the rows that need a message
            text = values[impossible | soft].map(lambda v: f"{v:g}").astype(object)
            text = text.reindex(values.index, fill_value="")
            hard = f" outside {bounds.hard_min:g}..{bounds.hard_max:g} {bounds.unit}"
            add(reasons, impossible, f"{name}=" + text + hard)
            expected = f" implausible (expected {bounds.soft_min:g}..{bounds.soft_max:g})"
            add(flags, soft, f"{name}=" + text + expected)
    for name in EXPECTED_INPUTS:
        if name in frame.columns:
            add(flags, frame[name].isna() & (reasons == ""), f"{name} missing")
        else:
            add(flags, pd.Series(True, index=frame.index), f"{name} missing")
    return reasons, flags


def score_frame(model: ThermalModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Score canonical rows; rows with a ``reason`` get empty prediction columns.

    Parameters
    ----------
    model
        A loaded model.
    frame
        Canonical columns, categories normalised, numeric columns as floats.

    Returns
    -------
    pandas.DataFrame
        :data:`OUTPUT_COLUMNS`, one row per input row, same order.
    """
    reasons, flags = _checks(frame)
    ok = (reasons == "").to_numpy()
    proba = np.full((len(frame), len(CLASSES)), np.nan)
    labels = np.full(len(frame), None, dtype=object)
    if ok.any():
        proba[ok] = model.predict_proba(frame.loc[ok], threads=0)
        names = np.array([c.value for c in CLASSES], dtype=object)
        labels[ok] = names[model.decide(proba[ok])]
    out = pd.DataFrame(
        {
            "record_id": frame["record_id"].to_numpy() if "record_id" in frame.columns else None,
            "predicted_class": labels,
            "p_cool": proba[:, 0],
            "p_neutral": proba[:, 1],
            "p_warm": proba[:, 2],
            "reason": reasons.to_numpy(),
            "flags": flags.to_numpy(),
        }
    )
    if "record_id" not in frame.columns:
        out = out.drop(columns=["record_id"])
    return out


def _column_types(path: Path) -> dict[str, pa.DataType]:
    """Types fixed from the header: numbers for the vocabulary's numeric columns, text otherwise.

    Inferring them from the first block breaks on files whose later rows hold text where the
    first rows held numbers (``subject_id`` in the database).
    """
    reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16))
    names = reader.schema.names
    reader.close()
    numeric = set(NUMERIC)
    return {n: pa.float64() if resolve_name(n) in numeric else pa.string() for n in names}


def _chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 22),
            convert_options=pacsv.ConvertOptions(column_types=_column_types(path)),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataSourceError(f"cannot read {path}: {str(exc).splitlines()[0]}.") from None
    buffer: list[pa.RecordBatch] = []
    count = 0
    try:
        for batch in reader:
            buffer.append(batch)
            count += batch.num_rows
            if count >= rows:
                yield pa.Table.from_batches(buffer).to_pandas()
                buffer, count = [], 0
    except pa.ArrowInvalid as exc:
        raise DataSourceError(
            f"cannot parse {path}: {str(exc).splitlines()[0]}. Numeric columns must hold numbers."
        ) from None
    if buffer:
        yield pa.Table.from_batches(buffer).to_pandas()


def predict_file(
    model: ThermalModel,
    input_path: Path,
    output_path: Path,
    *,
    metadata: Path | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> PredictionSummary:
    """Score a CSV file (database format, any resolvable column names) into a CSV file.

    Parameters
    ----------
    model
        A loaded model.
    input_path
        CSV (or csv.gz) with one observation per row; needs ``ta``.
    output_path
        Written through a temporary file and renamed when complete.
    metadata
        Building metadata joined on ``building_id``; buildings absent from it score with
        missing context.
    chunk_rows
        Rows per chunk.

    Returns
    -------
    PredictionSummary
        Rows read, scored and flagged.
    """
    import tempfile

    buildings = None
    if metadata is not None:
        buildings = read_table(metadata).drop_duplicates("building_id")
    summary = PredictionSummary()
    output_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        dir=output_path.parent, prefix=f".{output_path.name}.", suffix=".tmp"
    )
    tmp = Path(tmp_name)
    writer = None
    try:
        with open(fd, "wb") as sink:
            for raw in _chunks(input_path, chunk_rows):
                frame = coerce_numeric(resolve_columns(raw), source=input_path.name)
                validate_columns(list(frame.columns), REQUIRED_INPUTS)
                if buildings is not None and "building_id" in frame.columns:
                    extra = [
                        c for c in buildings.columns if c != "building_id" and c in frame.columns
                    ]
                    frame = frame.merge(buildings.drop(columns=extra), on="building_id", how="left")
                scored = score_frame(model, normalise_categories(frame))
                table = pa.Table.from_pandas(scored, preserve_index=False)
                if writer is None:
                    writer = pacsv.CSVWriter(sink, table.schema)
                writer.write_table(table)
                summary.rows += len(scored)
                summary.scored += int((scored["reason"] == "").sum())
                summary.flagged += int((scored["flags"] != "").sum())
            if writer is not None:
                writer.close()
        if writer is None:
            raise DataSourceError(f"{input_path} has no rows to score.")
        tmp.replace(output_path)
    finally:
        tmp.unlink(missing_ok=True)
    return summary
