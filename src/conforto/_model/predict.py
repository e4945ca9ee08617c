"""Batch prediction: CSV in, CSV out, streamed in chunks so memory stays flat.

Each output row matches one input row, in order: ``record_id`` when present,
``predicted_class``, calibrated ``p_cool``, ``p_neutral``, ``p_warm``, ``prediction_set`` (the
classes the vote falls in at the chosen coverage, e.g. ``cool|neutral``; empty for models
without a conformal calibration), the occupants' responses ``p_dissatisfied``,
``p_unacceptable``, ``p_prefer_cooler``, ``p_prefer_no_change``, ``p_prefer_warmer`` (empty for
models without them), ``reason`` (empty when scored, otherwise why the row was not
scored) and ``flags`` (implausible values that were scored as given, never clipped).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from conforto._data.bounds import PHYSICAL_BOUNDS
from conforto._data.categories import normalise_column
from conforto._data.columns import NUMERIC, resolve_columns, resolve_name, validate_columns
from conforto._data.load import coerce_numeric, read_table
from conforto._data.target import CLASS_NAMES
from conforto._fileio import atomic_writer
from conforto._model.adapted import REPLAY_COLUMNS, Answers, EarlierVotes, replayed, taught
from conforto._model.heads import COLUMNS as HEAD_COLUMNS
from conforto._model.inputs import REQUIRED_INPUTS, encode
from conforto._physics.features import PHYSICS_INPUTS
from conforto._settings import DEFAULT_LEVEL
from conforto._uncertainty.sets import check_level, sets_as_text
from conforto.errors import ConfigError, DataSourceError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import pandas as pd

    from conforto._model.artifact import ThermalModel

ObjectArray = npt.NDArray[np.object_]
IntArray = npt.NDArray[np.intp]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Inputs without which a row is not scored.
SCORED_ONLY_WITH = ("ta",)
CHUNK_ROWS = 200_000
#: Fewer rows score faster on one thread than on all cores (OpenMP's start-up costs more than it
#: saves: 1.2 ms against 3.1 ms for a row, 27 against 33 ms for 10,000 on two cores).
PARALLEL_ROWS = 10_000
OUTPUT_COLUMNS = (
    "record_id",
    "predicted_class",
    "p_cool",
    "p_neutral",
    "p_warm",
    "prediction_set",
    *HEAD_COLUMNS,
    "reason",
    "flags",
)


@dataclass
class PredictionSummary:
    """Counts of a batch prediction run."""

    rows: int = 0
    scored: int = 0
    flagged: int = 0


def _add(target: ObjectArray, rows: IntArray, text: ObjectArray | str) -> None:
    """Append ``text`` to the messages of ``rows``, separated by ``"; "``."""
    if rows.size:
        current = target[rows]
        target[rows] = np.where(current == "", "", current + "; ") + text


def _checks(frame: pd.DataFrame) -> tuple[ObjectArray, ObjectArray]:
    """Per-row reason (impossible values, missing ta) and flags (implausible, missing inputs)."""
    n = len(frame)
    reasons = np.full(n, "", dtype=object)
    flags = np.full(n, "", dtype=object)
    for name in SCORED_ONLY_WITH:
        _add(reasons, np.flatnonzero(frame[name].isna().to_numpy()), f"missing {name}")
    for name, bounds in PHYSICAL_BOUNDS.items():
        if name not in frame.columns or name == "thermal_sensation":
            continue
        values = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        outside = (values < bounds.hard_min) | (values > bounds.hard_max)
        unusual = ((values < bounds.soft_min) | (values > bounds.soft_max)) & ~outside
        impossible, soft = np.flatnonzero(outside), np.flatnonzero(unusual)
        hard = f" outside {bounds.hard_min:g}..{bounds.hard_max:g} {bounds.unit}"
        expected = f" implausible (expected {bounds.soft_min:g}..{bounds.soft_max:g})"
        for rows, target, suffix in ((impossible, reasons, hard), (soft, flags, expected)):
            if rows.size:  # format only the rows that need a message
                text = np.array([f"{name}={v:g}{suffix}" for v in values[rows]], dtype=object)
                _add(target, rows, text)
    unscored = reasons != ""
    for name in REQUIRED_INPUTS:  # the API refuses rows without them; here they are flagged
        if name in frame.columns:
            missing = np.flatnonzero(frame[name].isna().to_numpy() & ~unscored)
        else:
            missing = np.arange(n)
        _add(flags, missing, f"{name} missing")
    return reasons, flags


def _climates(frame: pd.DataFrame) -> list[str | None] | None:
    """Each row's climate in its one spelling (``None`` when unknown); ``None`` without them."""
    if "climate" not in frame.columns:
        return None
    return normalise_column(frame["climate"], "climate").tolist()


def score_frame(
    model: ThermalModel,
    frame: pd.DataFrame,
    coverage: float = DEFAULT_LEVEL,
    *,
    replay: bool = False,
    votes: EarlierVotes | None = None,
) -> pa.Table:
    """Score canonical rows; rows with a ``reason`` get empty prediction columns.

    Parameters
    ----------
    model
        A loaded model.
    frame
        Canonical columns, numeric columns as floats; category spellings are normalised here.
    coverage
        Confidence level of the prediction sets (0.5 to 0.99).
    replay
        Answer each row adapted to its site by the votes of the site's earlier days, as the
        day-by-day replay does (:mod:`conforto._model.adapted`; of the occupants' responses,
        the dissatisfied head's is adapted too); adds ``adapted_votes``.
    votes
        Earlier votes (scored) to answer each row adapted to its site by what they teach
        (:func:`conforto._model.adapted.taught`); adds ``adapted_votes``.

    Returns
    -------
    pyarrow.Table
        :data:`OUTPUT_COLUMNS` (``record_id`` only when ``frame`` has it; ``adapted_votes``
        last when adapted), one row per input row, same order.

    Raises
    ------
    ConfigError
        When asked both to replay and to learn from other votes.
    """
    if replay and votes is not None:
        raise ConfigError(
            "--replay learns from the file's own votes, --votes from another's: choose one."
        )
    ok, proba, responses, reasons, flags = zero_shot(model, frame)
    labels = np.full(len(frame), None, dtype=object)
    sets = np.full(len(frame), None, dtype=object)
    answers = Answers(proba, responses)
    if replay:
        answers = replayed(model, frame, ok, answers)
    elif votes is not None:
        answers = taught(model, frame, ok, answers, votes)
    proba, responses, used = answers.proba, answers.responses, answers.used
    if ok.any():
        decision = model.decide(proba[ok])
        labels[ok] = np.array(CLASS_NAMES, dtype=object)[decision]
        climates = _climates(frame.loc[ok]) if model.conformal.by == "climate" else None
        sets[ok] = sets_as_text(model.conformal.sets(proba[ok], coverage, decision, climates))
    columns = {
        "predicted_class": pa.array(labels, pa.string()),
        "p_cool": pa.array(proba[:, 0], from_pandas=True),
        "p_neutral": pa.array(proba[:, 1], from_pandas=True),
        "p_warm": pa.array(proba[:, 2], from_pandas=True),
        "prediction_set": pa.array(sets, pa.string()),
        **{
            name: pa.array(responses[:, i], from_pandas=True) for i, name in enumerate(HEAD_COLUMNS)
        },
        "reason": pa.array(reasons, pa.string()),
        "flags": pa.array(flags, pa.string()),
    }
    if "record_id" in frame.columns:
        columns = {"record_id": pa.Array.from_pandas(frame["record_id"]), **columns}
    if used is not None:
        columns["adapted_votes"] = pa.array(used, pa.int64())
    return pa.table(columns)


def zero_shot(
    model: ThermalModel, frame: pd.DataFrame
) -> tuple[BoolArray, FloatArray, FloatArray, ObjectArray, ObjectArray]:
    """The model's own answers of canonical rows.

    Returns
    -------
    tuple
        Which rows were scored, their probabilities (rows × 3) and occupants' responses (NaN
        where not scored), each row's ``reason`` (empty when scored) and ``flags``.
    """
    reasons, flags = _checks(frame)
    ok = reasons == ""
    proba = np.full((len(frame), len(CLASS_NAMES)), np.nan)
    responses = np.full((len(frame), len(HEAD_COLUMNS)), np.nan)
    if ok.any():
        threads = 0 if ok.sum() >= PARALLEL_ROWS else 1
        matrix = encode(frame.loc[ok], model.spec)
        proba[ok] = model.predict_matrix(matrix, threads=threads)
        if model.heads is not None:
            responses[ok] = model.heads.predict(matrix, threads=threads)
    return ok, proba, responses, reasons, flags


def earlier_votes(
    model: ThermalModel, path: Path, *, metadata: pd.DataFrame | None
) -> EarlierVotes:
    """A file of earlier votes, read whole and scored: what ``--votes`` teaches.

    Raises
    ------
    DataSourceError
        When the file cannot be read or holds no vote the model could score.
    """
    wanted = input_columns(model) | REPLAY_COLUMNS
    frames = [prepare_frame(raw, source=path.name) for raw in _chunks(path, sys.maxsize, wanted)]
    if not frames:
        raise DataSourceError(f"{path} has no votes.")
    frame = _with_metadata(frames[0], metadata)
    ok, proba, responses, *_ = zero_shot(model, frame)
    if not ok.any():
        raise DataSourceError(f"{path}: the model could score none of its rows (see 'reason').")
    return EarlierVotes(frame.loc[ok].reset_index(drop=True), proba[ok], responses[ok])


def _with_metadata(frame: pd.DataFrame, buildings: pd.DataFrame | None) -> pd.DataFrame:
    """``frame`` with the buildings' metadata joined on ``building_id`` (its own columns win)."""
    if buildings is None or "building_id" not in frame.columns:
        return frame
    extra = [c for c in buildings.columns if c != "building_id" and c in frame.columns]
    return frame.merge(buildings.drop(columns=extra), on="building_id", how="left")


def prepare_frame(raw: pd.DataFrame, *, source: str = "data") -> pd.DataFrame:
    """Rows as given (any resolvable column names) in the form :func:`score_frame` scores.

    Parameters
    ----------
    raw
        Observations in the database's, the API's or any supported spelling of the columns.
    source
        Name used in error messages.

    Returns
    -------
    pandas.DataFrame
        Canonical column names, numeric columns as floats (whole numbers included).

    Raises
    ------
    DataValidationError
        When a numeric column holds text that is no number.
    ColumnError
        When ``ta`` is missing, or two columns resolve to the same name.
    """
    frame = coerce_numeric(resolve_columns(raw), source=source)
    validate_columns(list(frame.columns), SCORED_ONLY_WITH)
    return frame


def _column_types(path: Path, wanted: set[str]) -> dict[str, pa.DataType]:
    """The columns to read and their types, fixed from the header: numbers for the vocabulary's
    numeric columns, text otherwise; columns that resolve to none of ``wanted`` are skipped.

    Inferring types from the first block breaks on files whose later rows hold text where the
    first rows held numbers (``subject_id`` in the database).
    """
    reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16))
    names = reader.schema.names
    reader.close()
    numeric = set(NUMERIC)
    canonical = {n: resolve_name(n) or n for n in names}
    return {
        n: pa.float64() if c in numeric else pa.string()
        for n, c in canonical.items()
        if c in wanted
    }


def _chunks(path: Path, rows: int, wanted: set[str]) -> Iterator[pd.DataFrame]:
    try:
        types = _column_types(path, wanted)
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 22),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(types)),
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


def input_columns(model: ThermalModel) -> set[str]:
    """Canonical columns batch prediction reads: the model's inputs, the physics inputs of its
    derived features, every column with physical bounds (checked), ``record_id`` and
    ``building_id``.
    """
    inputs = {f.name for f in model.spec.features if f.kind != "derived"}
    return inputs | set(PHYSICS_INPUTS) | set(PHYSICAL_BOUNDS) | {"record_id", "building_id"}


def predict_file(
    model: ThermalModel,
    input_path: Path,
    output_path: Path,
    *,
    metadata: Path | None = None,
    chunk_rows: int = CHUNK_ROWS,
    coverage: float = DEFAULT_LEVEL,
    replay: bool = False,
    votes: Path | None = None,
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
    coverage
        Confidence level of the prediction sets, 0.5 to 0.99.
    replay
        Answer each row adapted to its site by the votes of the site's earlier days
        (:func:`score_frame`); the file is read whole, as a site's days may be anywhere in it.
    votes
        A file of earlier votes (the database's format): each row answered adapted to its site
        by what they teach (:func:`score_frame`); both files are read whole.

    Returns
    -------
    PredictionSummary
        Rows read, scored and flagged.

    Raises
    ------
    ConfigError
        When ``coverage`` is outside 0.5 to 0.99.
    DataSourceError
        When the file cannot be read or has no rows.
    """
    try:
        check_level(coverage)
    except ValueError as exc:
        raise ConfigError(f"{exc}.") from None
    buildings = None
    if metadata is not None:
        buildings = read_table(metadata).drop_duplicates("building_id")
    taught_by = None if votes is None else earlier_votes(model, votes, metadata=buildings)
    summary = PredictionSummary()
    writer = None
    with atomic_writer(output_path) as sink:
        adapting = replay or votes is not None
        wanted = input_columns(model) | (REPLAY_COLUMNS if adapting else set())
        for raw in _chunks(input_path, sys.maxsize if adapting else chunk_rows, wanted):
            frame = _with_metadata(prepare_frame(raw, source=input_path.name), buildings)
            table = score_frame(model, frame, coverage, replay=replay, votes=taught_by)
            if writer is None:
                writer = pacsv.CSVWriter(sink, table.schema)
            writer.write_table(table)
            summary.rows += table.num_rows
            summary.scored += table.num_rows - pc.sum(pc.not_equal(table["reason"], "")).as_py()
            summary.flagged += pc.sum(pc.not_equal(table["flags"], "")).as_py()
        if writer is None:
            raise DataSourceError(f"{input_path} has no rows to score.")
        writer.close()
    return summary
