"""Load, name and join thermal-comfort field data.

The two tables of the ASHRAE Global Thermal Comfort Database II (measurements and building
metadata) are read from csv, csv.gz or parquet, their columns renamed to the canonical
vocabulary, numeric columns checked, categories normalised and the tables joined on
``building_id``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from conforto._data.categories import normalise_categories
from conforto._data.columns import NUMERIC, REQUIRED_TRAINING, resolve_columns, validate_columns
from conforto.errors import DataSourceError, DataValidationError

if TYPE_CHECKING:
    from collections.abc import Iterable

#: Value given to rows without a usable date in the month-year group column.
NO_DATE = "unknown"

_READERS = {".csv": "csv", ".gz": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class Votes:
    """Occupants' votes gathered by the service (``monitor export-feedback``), trained on
    beside the official data: how many, and from how many sites.
    """

    rows: int = 0
    sites: int = 0


@dataclass
class Dataset:
    """A joined measurements + metadata table and where it came from.

    Attributes
    ----------
    frame
        One row per vote, canonical column names, metadata columns joined.
    sources
        ``{"measurements": path, "metadata": path}`` (metadata may be absent).
    unmatched_buildings
        Building ids present in the measurements but not in the metadata.
    votes
        The service's votes among the rows (:func:`load_training_data`'s ``extra``).
    """

    frame: pd.DataFrame
    sources: dict[str, Path] = field(default_factory=dict)
    unmatched_buildings: list[int] = field(default_factory=list)
    votes: Votes = field(default_factory=Votes)


def load_training_data(
    measurements: Path | str, metadata: Path | str | None, extra: Path | None = None
) -> Dataset:
    """The training data: the database's files (columns the data does not have are
    tolerated), and the rows of ``extra`` (the service's voted predictions, in the database's
    format) after them.

    Raises
    ------
    DataSourceError, DataError
        As :func:`load_dataset`, for any of the files.
    """
    dataset = load_dataset(measurements, metadata, required=())
    if extra is None:
        return dataset
    more = load_dataset(extra, None, required=()).frame
    voted = more["thermal_sensation"].notna()
    votes = Votes(int(voted.sum()), int(more.loc[voted, "building_id"].nunique()))
    frame = pd.concat([dataset.frame, more], ignore_index=True)
    sources = {**dataset.sources, "extra": Path(extra)}
    return Dataset(frame, sources, dataset.unmatched_buildings, votes)


def read_table(path: Path | str) -> pd.DataFrame:
    """Read one csv, csv.gz or parquet file with the columns renamed to the vocabulary.

    Parameters
    ----------
    path
        File to read.

    Returns
    -------
    pandas.DataFrame
        The table, canonical column names, numeric columns as floats.

    Raises
    ------
    DataSourceError
        When the file is missing, unreadable, of an unknown type or empty.
    DataValidationError
        When a numeric column holds text that is not a number.
    """
    path = Path(path)
    if not path.is_file():
        raise DataSourceError(
            f"data file not found: {path}. Check the path (or download it "
            "with `conforto data download`)."
        )
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise DataSourceError(f"cannot read {path}: expected .csv, .csv.gz or .parquet.")
    try:
        frame = pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path, low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataSourceError(f"{path} is empty: it has no header and no rows.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:200]
        raise DataSourceError(f"cannot read {path}: {reason}. Is it a valid {kind} file?") from None
    if frame.empty:
        raise DataSourceError(f"{path} has a header but no rows.")
    frame = resolve_columns(frame)
    return coerce_numeric(frame, source=path.name)


def coerce_numeric(frame: pd.DataFrame, *, source: str = "data") -> pd.DataFrame:
    """Convert the vocabulary's numeric columns to floats, refusing text that is no number.

    Parameters
    ----------
    frame
        Data with canonical column names.
    source
        Name used in error messages.

    Returns
    -------
    pandas.DataFrame
        ``frame`` with numeric columns as ``float64`` (``building_id`` kept as integer when it
        has no gaps).

    Raises
    ------
    DataValidationError
        Naming each column with non-numeric values, how many and a few examples.
    """
    problems = []
    out = frame.copy()
    for column in NUMERIC:
        if column not in out.columns or pd.api.types.is_numeric_dtype(out[column]):
            continue
        raw = out[column]
        text = raw.astype("string").str.strip()
        numbers = pd.to_numeric(text, errors="coerce")
        bad = text.notna() & (text != "") & numbers.isna()
        if bad.any():
            examples = list(dict.fromkeys(text[bad].head(20)))[:3]
            hint = ""
            if all(re.fullmatch(r"-?\d+,\d+", str(e)) for e in examples):
                hint = " (decimal commas? write decimals with a point)"
            problems.append(
                f"{column!r}: {int(bad.sum())} non-numeric values such as "
                f"{', '.join(map(repr, examples))}{hint}"
            )
        out[column] = numbers.astype("float64")
    if problems:
        raise DataValidationError(
            f"{source} has text in numeric columns: {'; '.join(problems)}. "
            "Fix or blank those cells."
        )
    return out


def load_dataset(
    measurements: Path | str,
    metadata: Path | str | None = None,
    *,
    required: Iterable[str] = REQUIRED_TRAINING,
) -> Dataset:
    """Load the measurements, join the building metadata and normalise categories.

    Parameters
    ----------
    measurements
        Measurements table (one row per vote).
    metadata
        Building metadata table, joined on ``building_id``; ``None`` to skip.
    required
        Columns that must be present and not entirely empty after the join.

    Returns
    -------
    Dataset
        The joined table (rows in file order) and its provenance.

    Raises
    ------
    DataSourceError, ColumnError, DataValidationError
        With a message naming the file, column or value at fault and what to do.
    """
    votes = read_table(measurements)
    sources = {"measurements": Path(measurements)}
    unmatched: list[int] = []
    if metadata is not None:
        buildings = read_table(metadata)
        sources["metadata"] = Path(metadata)
        validate_columns(list(buildings.columns), ["building_id"])
        if "building_id" not in votes.columns:
            validate_columns(list(votes.columns), ["building_id"])
        duplicated = buildings["building_id"][buildings["building_id"].duplicated()]
        if not duplicated.empty:
            raise DataValidationError(
                f"{Path(metadata).name} lists buildings more than once, e.g. building_id "
                f"{', '.join(map(str, duplicated.head(3).tolist()))}: keep one row per building."
            )
        extra = [c for c in buildings.columns if c != "building_id" and c in votes.columns]
        buildings = buildings.drop(columns=extra)  # measurements win on shared columns
        known = set(buildings["building_id"].dropna())
        unmatched = sorted(int(b) for b in set(votes["building_id"].dropna()) - known)
        votes = votes.merge(buildings, on="building_id", how="left", validate="many_to_one")
    required = list(required)
    validate_columns(list(votes.columns), required)
    empty = [c for c in required if votes[c].isna().all()]
    if empty:
        raise DataValidationError(
            f"required columns hold no values at all: {', '.join(map(repr, empty))}. "
            "Fill them in or point at the right file."
        )
    return Dataset(normalise_categories(votes), sources, unmatched)


def utc_timestamps(values: pd.Series) -> pd.Series:
    """The UTC datetimes of ISO 8601 timestamps (text or datetimes); NaT where missing or
    unparsable.

    Examples
    --------
    >>> utc_timestamps(pd.Series(["1995-05-18T00:00:00-03:00", "no", None])).tolist()
    [Timestamp('1995-05-18 03:00:00+0000', tz='UTC'), NaT, NaT]
    """
    return pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")


def ensure_group_column(
    frame: pd.DataFrame, column: str = "mes_ano", *, timestamp: str = "timestamp"
) -> pd.DataFrame:
    """Add a month-year group column (``YYYY-MM``) derived from ``timestamp``.

    An existing ``column`` is kept untouched. Rows without a parsable date get
    :data:`NO_DATE` rather than being dropped.

    Parameters
    ----------
    frame
        Data, possibly with a ``timestamp`` column (ISO 8601 text or datetimes).
    column
        Name of the group column to add.
    timestamp
        Name of the column holding the date.

    Returns
    -------
    pandas.DataFrame
        ``frame`` itself when it already has ``column``, else a copy with it added.

    Examples
    --------
    >>> frame = pd.DataFrame({"timestamp": ["1995-05-18T00:00:00Z", None]})
    >>> ensure_group_column(frame)["mes_ano"].tolist()
    ['1995-05', 'unknown']
    """
    if column in frame.columns:
        return frame
    out = frame.copy()
    if timestamp not in out.columns:
        out[column] = NO_DATE
        return out
    dates = utc_timestamps(out[timestamp])
    out[column] = dates.dt.strftime("%Y-%m").astype(object).where(dates.notna(), NO_DATE)
    return out


def with_month(frame: pd.DataFrame, *, timestamp: str = "timestamp") -> pd.DataFrame:
    """``frame`` with a ``month`` column (1-12) from ``timestamp``, missing where there is none.

    Examples
    --------
    >>> with_month(pd.DataFrame({"timestamp": ["1995-05-18T00:00:00Z", None]}))["month"].tolist()
    [5, <NA>]
    """
    if "month" in frame.columns:
        return frame
    if timestamp not in frame.columns:
        return frame.assign(month=pd.array([pd.NA] * len(frame), dtype="Int8"))
    dates = utc_timestamps(frame[timestamp])
    return frame.assign(month=dates.dt.month.astype("Int8"))


def fingerprint(frame: pd.DataFrame) -> str:
    """Return a sha256 digest of a table's content (column names, dtypes and values).

    Parameters
    ----------
    frame
        Any table; row order matters, the index does not.

    Returns
    -------
    str
        64 hex digits; equal tables give equal digests.
    """
    digest = hashlib.sha256()
    digest.update("\x1f".join(f"{c}:{t}" for c, t in frame.dtypes.astype(str).items()).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
