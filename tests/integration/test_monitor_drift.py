"""``conforto monitor drift`` on real models, real files and a real prediction log."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from conforto._data.load import load_dataset
from conforto._model.artifact import DRIFT_REFERENCE, MANIFEST, load_model
from conforto._model.manifest import FORMAT_VERSION
from conforto._monitor.drift import check_drift
from conforto._monitor.window import LogSource, Span, read_predictions
from conforto._predictions.answer import Probabilities
from conforto._predictions.records import PredictionRow
from conforto._predictions.store import LogDatabase
from tests.cli import conforto_cli
from tests.factories import answer, as_format_1

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

DAY = 86_400.0


NEUTRAL = Probabilities(0.2, 0.5, 0.3)


def log_rows(url: str, frame: pd.DataFrame, created: float, spread: float = DAY) -> None:
    """Store ``frame``'s inputs as logged predictions made between ``created`` and
    ``created + spread`` [s since the epoch]."""
    inputs = ["ta", "tr", "rh", "vel", "met", "clo", "t_mot_isd", "season", "cooling_type"]
    rows = []
    for i, record in enumerate(frame[inputs].to_dict("records")):
        given = {str(k): v for k, v in record.items() if v is not None and v == v}
        when = created + spread * i / max(len(frame), 1)
        made = answer("neutral", uuid.uuid4().hex, model_version="1", probabilities=NEUTRAL)
        rows.append(PredictionRow.of(made, given, 2.0, None, now=when))
    database = LogDatabase(url)
    try:
        database.write(rows)
    finally:
        database.close()


@pytest.fixture(scope="module")
def seen(sample_paths: tuple[Path, Path]) -> pd.DataFrame:
    """The rooms ``trained_model`` learnt from: no drift against its reference."""
    return load_dataset(*sample_paths).frame


def test_every_model_carries_a_checksummed_drift_reference(trained_model: Path) -> None:
    manifest = json.loads((trained_model / MANIFEST).read_text())
    assert DRIFT_REFERENCE in manifest["files"]
    reference = pd.read_parquet(trained_model / DRIFT_REFERENCE)
    assert 1000 <= len(reference) <= 5000
    model = load_model(trained_model)
    assert set(reference.columns) == {*model.spec.inputs, "month"}
    assert reference["month"].between(1, 12).mean() > 0.5


def test_the_cli_judges_a_file_and_fails_only_when_asked(
    trained_model: Path, seen: pd.DataFrame, tmp_path: Path
) -> None:
    plain, warmer = tmp_path / "plain.csv", tmp_path / "warmer.csv"
    sample = seen.sample(3000, random_state=1)
    sample.to_csv(plain, index=False)
    sample.assign(ta=sample["ta"] + 4, tr=sample["tr"] + 4).rename(
        columns={"ta": "Temperatura do ar (°C)"}  # any resolvable name
    ).to_csv(warmer, index=False)
    strict = tmp_path / "strict.yaml"
    strict.write_text("monitor: {drift_share: 0.1}\n")
    out = tmp_path / "r"
    common = ["monitor", "drift", "--model", str(trained_model), "--out", str(out)]

    same = conforto_cli(*common, "--input", str(plain), "--fail-on-drift")
    assert same.returncode == 0, same.stdout + same.stderr
    assert json.loads((out / "drift.json").read_text())["drifted_features"] == []

    two = conforto_cli(*common, "--input", str(warmer), "--fail-on-drift")
    assert two.returncode == 0, two.stdout + two.stderr  # 2 inputs of 20: not the data set
    report = json.loads((out / "drift.json").read_text())
    assert sorted(report["drifted_features"]) == ["ta", "tr"]
    assert report["dataset_drift"] is False
    assert report["current"] == {
        "source": f"file:{warmer}",
        "from": None,
        "until": None,
        "rows": 3000,
    }
    assert report["reference"]["source"] == "training"
    assert "ta" in two.stdout
    assert (out / "drift.html").stat().st_size > 10_000

    failed = conforto_cli(
        *common, "--input", str(warmer), "--config", str(strict), "--fail-on-drift"
    )
    assert failed.returncode == 1
    assert json.loads((out / "drift.json").read_text())["dataset_drift"] is True
    told = conforto_cli(*common, "--input", str(warmer), "--config", str(strict))
    assert told.returncode == 0  # drift is a finding, not an error, unless --fail-on-drift


def test_a_format_1_model_is_refused_until_upgraded(
    trained_model: Path, holdout_paths: tuple[Path, Path], tmp_path: Path
) -> None:
    old = as_format_1(trained_model, tmp_path / "old-model")
    drift = ("monitor", "drift", "--model", str(old), "--input", str(holdout_paths[0]))
    refused = conforto_cli(*drift)
    assert refused.returncode == 1
    assert "artifact format 1" in refused.stderr
    assert "conforto model upgrade" in refused.stderr
    upgraded = conforto_cli("model", "upgrade", "--dir", str(old))
    assert upgraded.returncode == 0, upgraded.stderr
    assert conforto_cli(*drift, "--out", str(tmp_path / "report")).returncode == 0
    assert load_model(old).manifest.format_version == FORMAT_VERSION


def test_a_format_1_model_trained_before_the_drift_reference_cannot_be_upgraded(
    trained_model: Path, tmp_path: Path
) -> None:
    old = as_format_1(trained_model, tmp_path / "old-model", drop=(DRIFT_REFERENCE,))
    before = (old / "manifest.json").read_bytes()
    done = conforto_cli("model", "upgrade", "--dir", str(old))
    assert done.returncode == 1
    assert f"missing {DRIFT_REFERENCE}" in done.stderr
    assert "retrain it" in done.stderr
    assert (old / "manifest.json").read_bytes() == before  # left as it was


def test_the_prediction_log_is_read_in_chunks_and_judged_by_window(
    trained_model: Path, seen: pd.DataFrame, log_url: str
) -> None:
    now = time.time()
    rows = seen.sample(2400, random_state=2)
    log_rows(log_url, rows.iloc[:1200], now - 20 * DAY, 10 * DAY)  # 20 to 10 days ago
    warm = rows.iloc[1200:].assign(ta=lambda f: f["ta"] + 3, tr=lambda f: f["tr"] + 3)
    log_rows(log_url, warm, now - 3 * DAY, 2 * DAY)  # 3 to 1 days ago

    week = Span(datetime.now(UTC) - timedelta(days=7), datetime.now(UTC))
    chunks = [len(f) for f in read_predictions(log_url, week, chunk_rows=500)]
    assert chunks == [500, 500, 200]  # bounded queries, every row once
    frame = pd.concat(read_predictions(log_url, week, chunk_rows=500))
    assert frame["prediction_id"].is_unique
    assert frame["created"].is_monotonic_increasing
    assert {"ta", "season", "month"} <= set(frame.columns)

    model = load_model(trained_model)
    report, _, _ = check_drift(model, LogSource(log_url, week))
    assert report.current["rows"] == 1200
    assert {"ta", "tr"} <= set(report.drifted_features)
    before = Span.parse("25d", "8d")
    report, _, _ = check_drift(model, LogSource(log_url, week), baseline=LogSource(log_url, before))
    assert report.reference["source"] == "prediction_log"
    assert report.reference["rows"] == 1200
    assert {"ta", "tr"} <= set(report.drifted_features)
    old = Span.parse("25d", "15d")
    report, _, _ = check_drift(
        model, LogSource(log_url, Span.parse("15d", "8d")), baseline=LogSource(log_url, old)
    )
    assert report.drifted_features == []  # the log's own past, same rooms: no drift


def test_the_cli_reads_the_log_of_the_settings(
    trained_model: Path, seen: pd.DataFrame, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log_rows(url, seen.sample(600, random_state=3), time.time() - 2 * DAY)
    done = conforto_cli(
        "monitor",
        "drift",
        "--model",
        str(trained_model),
        "--since",
        "3d",
        "--out",
        str(tmp_path / "r"),
        env={"CONFORTO_SERVE__LOG_URL": url},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "r" / "drift.json").read_text())
    assert report["current"]["source"] == "prediction_log"
    assert report["current"]["rows"] == 600
    empty = conforto_cli(
        "monitor",
        "drift",
        "--model",
        str(trained_model),
        "--since",
        "30d",
        "--until",
        "20d",
        env={"CONFORTO_SERVE__LOG_URL": url},
    )
    assert empty.returncode == 0, empty.stdout + empty.stderr  # a quiet window is no failure
    assert "quiet: no prediction in the prediction log" in empty.stdout
