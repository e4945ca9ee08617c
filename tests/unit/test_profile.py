from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from conforto._data.profiling import profile_frame, write_profile

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd


def test_profile_has_stats_and_histograms(
    frames: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    measurements, _ = frames
    profile = profile_frame(measurements.assign(age=np.nan))
    ta = profile["columns"]["ta"]
    assert ta["kind"] == "numeric"
    assert ta["count"] == len(measurements)
    assert ta["min"] == measurements["ta"].min()
    assert ta["max"] == measurements["ta"].max()
    assert sum(ta["hist"]["counts"]) == len(measurements)
    assert ta["unit"] == "°C"
    assert profile["columns"]["age"]["null_rate"] == 1.0
    assert "record_id" not in profile["columns"]
    assert profile["columns"]["season"]["kind"] == "categorical"
    json_path, html_path = write_profile(profile, tmp_path)
    assert json.loads(json_path.read_text())["n_rows"] == len(measurements)
    assert "data:image/png;base64," in html_path.read_text()
