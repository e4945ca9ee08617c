from __future__ import annotations

import json
from typing import TYPE_CHECKING

from typer.testing import CliRunner

from conforto._cli import app

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("conforto ")


def test_validate_passes_and_writes_reports(data_files: tuple[Path, Path], tmp_path: Path) -> None:
    m, d = data_files
    out = tmp_path / "reports"
    result = runner.invoke(
        app, ["data", "validate", "--measurements", str(m), "--metadata", str(d), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "validation.json").read_text())["ok"] is True


def test_validate_fails_naming_the_column(
    tmp_path: Path, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    measurements, metadata = frames
    m, d = tmp_path / "m.csv", tmp_path / "d.csv"
    measurements.assign(rh=150.0).to_csv(m, index=False)
    metadata.to_csv(d, index=False)
    result = runner.invoke(
        app,
        [
            "data",
            "validate",
            "--measurements",
            str(m),
            "--metadata",
            str(d),
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 1
    assert "rh: impossible: Relative humidity must be within 0..100 %" in result.output


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    result = runner.invoke(
        app, ["data", "validate", "--measurements", str(missing), "--metadata", str(missing)]
    )
    assert result.exit_code == 1
    assert "error: data file not found" in result.output
    assert "Traceback" not in result.output


def test_profile_writes_reports(data_files: tuple[Path, Path], home: Path) -> None:
    m, d = data_files
    result = runner.invoke(app, ["data", "profile", "--measurements", str(m), "--metadata", str(d)])
    assert result.exit_code == 0, result.output
    assert (home / "reports" / "profile.html").is_file()


def test_invalid_settings_are_reported(monkeypatch: object) -> None:
    monkeypatch.setenv("CONFORTO_DOWNLOAD__RETRIES", "-1")  # type: ignore[attr-defined]
    result = runner.invoke(app, ["data", "download"])
    assert result.exit_code == 1
    assert "CONFORTO_DOWNLOAD__RETRIES" in result.output


def test_the_gate_is_conforto_gate_and_the_old_spelling_still_runs_it_unlisted() -> None:
    listed = runner.invoke(app, ["--help"]).output
    assert " gate " in listed
    assert "validate-model" not in listed  # "validate" is for data checks only
    old = runner.invoke(app, ["validate-model", "--help"])
    assert old.exit_code == 0
    assert "The promotion gate" in old.output


def test_the_listed_help_of_every_command_is_its_own() -> None:
    """``conforto --help`` lists each command from a table, without importing its module: the
    table says what the command itself says."""
    import typer

    from conforto._cli import COMMANDS, load

    for name, entry in COMMANDS.items():
        command = load(name)
        assert command.name == name
        assert command.hidden == entry.hidden, name
        if not entry.hidden:
            own = typer.Context(command).command.get_short_help_str(limit=1000)
            assert own == entry.help, name
    listed = " ".join(runner.invoke(app, ["--help"]).output.replace("│", " ").split())
    for name, entry in COMMANDS.items():
        assert (entry.help in listed) != entry.hidden, name  # wrapped lines joined again


def test_an_unknown_command_is_refused_with_the_list_of_commands() -> None:
    result = runner.invoke(app, ["trian"])
    assert result.exit_code == 2
    assert "No such command 'trian'" in result.output
