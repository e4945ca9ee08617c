"""The prediction log's rows as the spool holds them: one frozen type per table, fields named.

A frame of the spool (:mod:`.spool`) names each table's fields once and lists the rows' values
under them (JSON), so a spool reads the same under any Python version and a field added later
(with a default) leaves older spools readable. Spools of the previous format (positional
values, ``marshal``) are read through :func:`legacy_row`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from operator import attrgetter
from typing import TYPE_CHECKING, ClassVar, Literal, get_args

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from conforto._predictions.answer import Prediction

#: A model input's value as given: a number, or a category's name.
InputValue = float | str
#: Who asked for a prediction: an ``occupant``'s room (the default: a building's system or an
#: app), the comfort ``explorer`` (its synthetic curves), a deploy's ``smoke`` test, or a
#: ``shadow`` copy of traffic another deployment answers. Only occupants' rows count for
#: drift, performance, the votes exported and retraining.
Kind = Literal["occupant", "explorer", "smoke", "shadow"]
KINDS: tuple[Kind, ...] = get_args(Kind)
#: The kind a request is unless it says otherwise, and the only one the monitors count.
OCCUPANT: Kind = "occupant"


@dataclass(slots=True)
class PredictionRow:
    """A prediction production (or a canary challenger) answered.

    Attributes
    ----------
    created
        When it was answered [s since the epoch].
    latency_ms
        From the request's arrival to the answer's spooling [ms].
    inputs
        The inputs given (nothing for those left out).
    site
        The building or site the caller named.
    prediction_set
        The set's classes joined by ``|``; ``coverage`` its level.
    arm
        ``canary`` when a challenger answered it; ``None``: production.
    kind
        Who asked (:data:`Kind`).
    zero_shot_cool, zero_shot_neutral, zero_shot_warm, zero_shot_class, zero_shot_dissatisfied
        The model's answer before site adaptation adjusted it (``None``: it did not).
    adapted_votes, adaptation_version
        The votes the adaptation learned from, and its state's version (its last vote's id).
    """

    TABLE: ClassVar[str] = "predictions"
    prediction_id: str
    created: float
    model_version: str
    predicted_class: str
    p_cool: float
    p_neutral: float
    p_warm: float
    pmv: float | None
    latency_ms: float
    inputs: Mapping[str, InputValue]
    site: str | None = None
    prediction_set: str | None = None
    coverage: float | None = None
    p_dissatisfied: float | None = None
    p_unacceptable: float | None = None
    p_prefer_cooler: float | None = None
    p_prefer_no_change: float | None = None
    p_prefer_warmer: float | None = None
    arm: str | None = None
    kind: Kind = OCCUPANT
    zero_shot_cool: float | None = None
    zero_shot_neutral: float | None = None
    zero_shot_warm: float | None = None
    adapted_votes: int | None = None
    adaptation_version: int | None = None
    zero_shot_class: str | None = None
    zero_shot_dissatisfied: float | None = None

    @classmethod
    def of(
        cls,
        prediction: Prediction,
        inputs: Mapping[str, InputValue],
        latency_ms: float,
        site: str | None,
        *,
        now: float,
        arm: str | None = None,
        kind: Kind = OCCUPANT,
    ) -> PredictionRow:
        """The row of an answer to ``inputs``, spooled at ``now`` [s since the epoch]."""
        p, preference = prediction.probabilities, prediction.preference
        adapted = prediction.adaptation
        zero_shot = None if adapted is None else adapted.zero_shot
        return cls(
            prediction.prediction_id,
            now,
            prediction.model_version,
            prediction.predicted_class,
            p.cool,
            p.neutral,
            p.warm,
            prediction.pmv,
            latency_ms,
            inputs,
            site,
            "|".join(prediction.prediction_set),
            prediction.coverage,
            prediction.dissatisfied,
            prediction.unacceptable,
            None if preference is None else preference.cooler,
            None if preference is None else preference.no_change,
            None if preference is None else preference.warmer,
            arm,
            kind,
            None if zero_shot is None else zero_shot.cool,
            None if zero_shot is None else zero_shot.neutral,
            None if zero_shot is None else zero_shot.warm,
            None if adapted is None else adapted.votes,
            None if adapted is None else adapted.version,
            None if adapted is None else adapted.zero_shot_class,
            None if adapted is None else adapted.zero_shot_dissatisfied,
        )


@dataclass(slots=True)
class VoteRow:
    """An occupant's vote on a prediction (``created`` [s since the epoch]), sent by
    ``client`` (``X-Client-Id``, else its address; ``None`` in rows from before it was kept).
    """

    TABLE: ClassVar[str] = "feedback"
    prediction_id: str
    thermal_sensation: float
    created: float
    client: str | None = None


@dataclass(slots=True)
class ShadowRow:
    """A shadow challenger's answer to a prediction production gave: its class and
    probabilities, or ``error`` (the exception's name) when it failed; ``latency_ms`` is its
    batch's time [ms], ``created`` [s since the epoch].
    """

    TABLE: ClassVar[str] = "shadow"
    prediction_id: str
    created: float
    model_version: str
    predicted_class: str | None
    p_cool: float | None
    p_neutral: float | None
    p_warm: float | None
    latency_ms: float
    error: str | None = None


@dataclass(slots=True)
class EventRow:
    """A challenger's start or end: ``event`` is ``started``, ``removed``, ``stopped``
    (automatically) or ``promoted`` (production now); ``created`` [s since the epoch].
    """

    TABLE: ClassVar[str] = "events"
    created: float
    model_version: str
    mode: str
    event: str
    reason: str = ""


#: Any of the log's rows.
Row = PredictionRow | VoteRow | ShadowRow | EventRow
#: Each table's row type.
ROWS: dict[str, type[Row]] = {
    cls.TABLE: cls for cls in (PredictionRow, VoteRow, ShadowRow, EventRow)
}
#: Each row type's fields, in order. Fields are only ever appended, with a default: a row
#: written with fewer is read with the later ones at their defaults.
FIELDS: dict[type[Row], tuple[str, ...]] = {
    cls: tuple(f.name for f in fields(cls)) for cls in ROWS.values()
}
_VALUES = {cls: attrgetter(*names) for cls, names in FIELDS.items()}


def values(row: Row) -> tuple[object, ...]:
    """A row's values, in the order of its type's :data:`FIELDS`."""
    got: tuple[object, ...] = _VALUES[type(row)](row)
    return got


def read_row(table: str, names: Sequence[str], given: Sequence[object]) -> Row:
    """The row of ``table`` whose fields ``names`` have the values ``given``.

    Raises
    ------
    ValueError
        When the table is unknown, a field is not one of its row type's, or a field without a
        default is missing.
    """
    kind = ROWS.get(table)
    if kind is None:
        raise ValueError(f"no table {table!r}")
    try:
        return kind(**dict(zip(names, given, strict=True)))  # type: ignore[arg-type]
    except TypeError as exc:
        raise ValueError(f"not a row of {table}: {exc}") from None


def legacy_row(table: str, given: Sequence[object]) -> Row:
    """A row of the previous spool format: the positional values of ``table``'s first fields
    (``inputs`` as ``(name, value)`` pairs).

    Raises
    ------
    ValueError
        As :func:`read_row`, and when there are more values than fields.
    """
    names = FIELDS[ROWS[table]] if table in ROWS else ()
    if len(given) > len(names):
        raise ValueError(f"not a row of the previous spool format: {table!r}")
    row = dict(zip(names, given, strict=False))
    if "inputs" in row:
        row["inputs"] = dict(row["inputs"])  # type: ignore[call-overload]
    return read_row(table, list(row), list(row.values()))
