"""What the spool holds: rows that name their fields, and frames of the previous format."""

from __future__ import annotations

import json
import marshal
import zlib
from typing import TYPE_CHECKING

import pytest

from conforto._predictions.answer import Preference
from conforto._predictions.records import PredictionRow, Row, ShadowRow, VoteRow
from conforto._predictions.spool import (
    HEADER,
    LEGACY_MAGIC,
    MAGIC,
    UnreadableFrameError,
    encode,
    frames,
)
from tests.factories import answer

if TYPE_CHECKING:
    from pathlib import Path


def _frame(payload: bytes, magic: bytes = LEGACY_MAGIC) -> bytes:
    """A whole frame (checksummed) of ``payload``; by default as conforto wrote them before:
    positional rows, marshalled."""
    return HEADER.pack(magic, len(payload), zlib.crc32(payload), 1) + payload


def test_a_prediction_row_carries_the_answer_and_its_request() -> None:
    made = answer(
        "warm",
        prediction_set=("neutral", "warm"),
        dissatisfied=0.3,
        unacceptable=0.2,
        preference=Preference(0.6, 0.3, 0.1),
    )
    row = PredictionRow.of(made, {"ta": 30.0, "season": "summer"}, 2.5, "bloco A", now=1.7e9)
    assert (row.prediction_id, row.predicted_class, row.model_version) == (
        made.prediction_id,
        "warm",
        "3",
    )
    assert (row.p_cool, row.p_neutral, row.p_warm) == (0.1, 0.3, 0.6)
    assert (row.prediction_set, row.coverage, row.site, row.latency_ms) == (
        "neutral|warm",
        0.9,
        "bloco A",
        2.5,
    )
    assert (row.p_dissatisfied, row.p_prefer_cooler, row.p_prefer_warmer) == (0.3, 0.6, 0.1)
    assert row.arm is None


def test_a_frame_names_every_field_and_reads_back_as_the_rows(tmp_path: Path) -> None:
    made = PredictionRow.of(answer(), {"ta": 30.0, "country": "brasil"}, 2.5, None, now=1.7e9)
    rows: list[Row] = [
        VoteRow("a" * 32, -1.0, 1.7e9),
        made,
        ShadowRow("a" * 32, 1.7e9, "4", None, None, None, None, 3.0, "KeyError"),
        VoteRow("b" * 32, 2.0, 1.7e9, "app 7"),
    ]
    frame = encode(rows)
    payload = json.loads(frame[HEADER.size :])
    assert payload["feedback"] == {
        "fields": ["prediction_id", "thermal_sensation", "created", "client"],
        "rows": [["a" * 32, -1.0, 1.7e9, None], ["b" * 32, 2.0, 1.7e9, "app 7"]],
    }
    predictions = payload["predictions"]
    named = dict(zip(predictions["fields"], predictions["rows"][0], strict=True))
    assert named["inputs"] == {"ta": 30.0, "country": "brasil"}
    assert (named["prediction_id"], named["p_warm"]) == (made.prediction_id, 0.6)
    path = tmp_path / "a.000000.seg"
    path.write_bytes(frame)
    read = next(frames(path))
    assert read.count == 4
    assert sorted(read.rows or [], key=repr) == sorted(rows, key=repr)  # grouped by table


def test_a_frame_of_the_previous_format_is_read_with_its_missing_fields_empty(
    tmp_path: Path,
) -> None:
    before_sets = ("b" * 32, 1.7e9, "2", "cool", 0.7, 0.2, 0.1, -1.1, 3.0, (("ta", 18.0),), None)
    path = tmp_path / "a.000000.seg"
    path.write_bytes(
        _frame(marshal.dumps([("predictions", before_sets), ("feedback", ("b" * 32, -2.0, 1.7e9))]))
        + encode([VoteRow("c" * 32, 0.0, 1.7e9)])
    )
    legacy, current = list(frames(path))
    prediction, vote = legacy.rows or []
    assert isinstance(prediction, PredictionRow)
    assert (prediction.prediction_id, prediction.inputs, prediction.pmv) == (
        "b" * 32,
        {"ta": 18.0},
        -1.1,
    )
    assert (prediction.prediction_set, prediction.p_dissatisfied, prediction.arm) == (None,) * 3
    assert vote == VoteRow("b" * 32, -2.0, 1.7e9)
    assert current.rows == [VoteRow("c" * 32, 0.0, 1.7e9)]


#: A vote as a later conforto might spool it, with a field this one does not have.
NEWER = json.dumps(
    {
        "feedback": {
            "fields": ["prediction_id", "thermal_sensation", "created", "seat"],
            "rows": [["d", 1.0, 1.0, "4B"]],
        }
    }
).encode()


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (_frame(b"\xff\xff"), "previous spool format that this Python cannot read"),
        (_frame(NEWER, MAGIC), "does not know"),
    ],
    ids=["marshal it cannot read", "a newer conforto's fields"],
)
def test_a_whole_frame_that_cannot_be_read_is_reported_where_it_starts(
    tmp_path: Path, frame: bytes, reason: str
) -> None:
    path = tmp_path / "a.000000.seg"
    whole = encode([VoteRow("e" * 32, 1.0, 1.7e9)])
    path.write_bytes(whole + frame)
    with pytest.raises(UnreadableFrameError, match=reason) as unreadable:
        list(frames(path))
    assert unreadable.value.offset == len(whole)
