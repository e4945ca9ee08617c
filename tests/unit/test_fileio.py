"""One atomic writer: whole files or none, readable by everyone, nothing left behind."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from conforto._fileio import atomic_write_json, atomic_writer

if TYPE_CHECKING:
    from pathlib import Path


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "out.csv"
    target.write_text("old\n")

    def write_half() -> None:
        with atomic_writer(target, "w") as handle:
            handle.write("new, but")
            raise RuntimeError("half way")

    with pytest.raises(RuntimeError, match="half way"):
        write_half()
    assert target.read_text() == "old\n"
    assert [p.name for p in folder.iterdir()] == ["out.csv"]


def test_written_files_are_readable_by_other_users_whatever_the_temporary_file_was(
    tmp_path: Path,
) -> None:
    with atomic_writer(tmp_path / "new" / "rows.csv") as handle:
        handle.write(b"a,b\n1,2\n")
    assert (tmp_path / "new" / "rows.csv").stat().st_mode & 0o777 == 0o644
    path = atomic_write_json(tmp_path / "m.json", {"x": float("nan")})
    assert path.read_text() == '{\n  "x": null\n}\n'
    assert path.stat().st_mode & 0o777 == 0o644
