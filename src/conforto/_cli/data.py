"""``conforto data``: download, validate and profile thermal-comfort data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from conforto._cli import render
from conforto._cli.common import (
    MeasurementsOpt,
    MetadataOpt,
    console,
    errors,
    out_dir,
    sources,
    stage_run,
)
from conforto._settings import get_settings

app = typer.Typer(help="Download, validate and profile thermal-comfort data.", no_args_is_help=True)

ReportsOut = Annotated[
    Path | None,
    typer.Option(help="Folder for the reports. Default: CONFORTO_HOME/reports."),
]


@app.command("download")
def download(
    out: Annotated[
        Path | None, typer.Option(help="Folder for the files. Default: CONFORTO_HOME/cache.")
    ] = None,
) -> None:
    """Download the official ASHRAE Global Thermal Comfort Database II files, verified."""
    from conforto._data.download import download_official

    with errors():
        paths = download_official(get_settings(), out=out)
    for name, path in paths.items():
        console.print(f"{name}: {path}", highlight=False)


@app.command("validate")
def validate(
    measurements: MeasurementsOpt = None, metadata: MetadataOpt = None, out: ReportsOut = None
) -> None:
    """Validate the data: physical bounds, required columns, nulls, duplicates, categories.

    Writes validation.json and validation.html; exits 1 when a check fails (warnings are
    allowed).
    """
    from conforto._data.load import load_dataset
    from conforto._data.validation import validate_dataset, write_validation
    from conforto._lifecycle.stages import record_validation

    with errors():
        m, d = sources(measurements, metadata)
        with stage_run("data_validation", "data") as run:
            run.log_params({"measurements": str(m), "metadata": str(d)})
            report = validate_dataset(load_dataset(m, d, required=()))
            json_path, html_path = write_validation(report, out_dir(out, "reports"))
            record_validation(run, report, (json_path, html_path))
    render.validation(report, {"json": json_path, "html": html_path})
    if not report.ok:
        raise typer.Exit(1)


@app.command("profile")
def profile(
    measurements: MeasurementsOpt = None, metadata: MetadataOpt = None, out: ReportsOut = None
) -> None:
    """Write per-column statistics and histograms: profile.json and profile.html."""
    from conforto._data.load import ensure_group_column, load_dataset
    from conforto._data.profiling import profile_frame, write_profile

    with errors():
        dataset = load_dataset(*sources(measurements, metadata), required=())
        frame = ensure_group_column(dataset.frame)
        json_path, html_path = write_profile(profile_frame(frame), out_dir(out, "reports"))
    console.print(
        f"profile of {len(frame)} rows\n  json: {json_path}\n  html: {html_path}", highlight=False
    )
