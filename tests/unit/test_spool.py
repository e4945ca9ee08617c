"""The spool's files and the prediction ids, on a real folder."""

from __future__ import annotations

import os
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from conforto._predictions.ids import issued_at, new_ids
from conforto._predictions.records import VoteRow
from conforto._predictions.spool import (
    HEADER,
    Spool,
    TornFrameError,
    encode,
    frames,
    segments,
    try_lock,
)
from conforto.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path


def _rows(n: int, start: int = 0) -> list[VoteRow]:
    return [VoteRow(f"{i:032x}", 0.5, 1.7e9) for i in range(start, start + n)]


def test_ids_are_version_7_uuids_in_time_order() -> None:
    early = new_ids(500, now=1_800_000_000.000)
    late = new_ids(1, now=1_800_000_000.002)[0]
    parsed = [uuid.UUID(i) for i in early]
    assert {(u.version, u.variant) for u in parsed} == {(7, uuid.RFC_4122)}
    assert len(set(early)) == 500  # the random bits differ
    assert all(i == i.lower() and len(i) == 32 for i in early)
    assert max(early) < late  # lexical order is time order across milliseconds
    assert issued_at(late) == pytest.approx(1_800_000_000.002)
    assert abs(issued_at(new_ids(1)[0]) - time.time()) < 1  # type: ignore[operator]
    assert issued_at(uuid.uuid4().hex) is None  # ids from before: no time in them


def test_frames_come_back_in_order_and_headers_count_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.000000.seg"
    path.write_bytes(encode(_rows(3)) + encode(_rows(2, 3)))
    read = list(frames(path))
    assert [f.count for f in read] == [3, 2]
    assert [r for f in read for r in f.rows or []] == _rows(5)
    assert read[-1].end == path.stat().st_size
    assert [f.count for f in frames(path, read[0].end, rows=False)] == [2]


@pytest.mark.parametrize("cut", [5, HEADER.size + 3])
def test_a_torn_frame_is_reported_where_it_starts(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "a.000000.seg"
    whole = encode(_rows(2))
    path.write_bytes(whole + encode(_rows(1))[:cut])
    with pytest.raises(TornFrameError) as torn:
        list(frames(path))
    assert torn.value.offset == len(whole)


def test_a_corrupt_payload_fails_its_checksum(tmp_path: Path) -> None:
    path = tmp_path / "a.000000.seg"
    frame = bytearray(encode(_rows(2)))
    frame[-3] ^= 0xFF
    path.write_bytes(bytes(frame))
    with pytest.raises(TornFrameError):
        list(frames(path))


def test_a_spool_holds_its_owner_lock_and_rotates_its_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=1 << 16)  # 4 KiB segments
    assert try_lock(tmp_path / "spool" / f"{spool.owner}.owner") is None  # held: alive
    for i in range(40):
        assert spool.append(_rows(10, 10 * i))
    own = segments(tmp_path / "spool")[spool.owner]
    assert len(own) > 2
    assert [p.name.split(".")[1] for p in own] == [f"{i:06d}" for i in range(len(own))]
    stored = [r for p in own for f in frames(p) for r in f.rows or []]
    assert stored == _rows(400)
    spool.close()
    fd = try_lock(tmp_path / "spool" / f"{spool.owner}.owner")
    assert fd is not None  # released: the owner is gone
    os.close(fd)


def test_an_unwritable_spool_folder_names_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="CONFORTO_SERVE__SPOOL_DIR"):
        Spool(blocker / "spool")
