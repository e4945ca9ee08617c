"""Scale-out, tested small (``make test-spark``): the production model scores a few thousand rows
through ``mlflow.pyfunc.spark_udf`` on a local Spark session, in an environment of its own (as a
cluster's executors have one), with the answers of ``conforto predict``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conforto._cli import app
from conforto._model.heads import COLUMNS as HEAD_COLUMNS
from conforto._registry.model_registry import open_registry
from conforto._settings import get_settings
from tests.factories import REPO

pytestmark = pytest.mark.integration


def _spark_python() -> str:
    python = os.environ.get("CONFORTO_SPARK_PYTHON", str(REPO / ".venv-spark" / "bin" / "python"))
    if not Path(python).is_file():
        pytest.fail(f"no Spark environment at {python}: run `make test-spark`.")
    if shutil.which("java") is None:
        pytest.fail("Spark needs Java 17+: apt-get install default-jre-headless.")
    return python


def test_spark_udf_scores_as_conforto_predict(
    trained_model: Path, holdout_paths: tuple[Path, Path], tmp_path: Path
) -> None:
    python = _spark_python()
    registry = open_registry(get_settings())
    registry.register(trained_model)
    registry.promote("1", force=True)
    measurements = pd.read_csv(holdout_paths[0], low_memory=False).head(4000)
    measurements.loc[:4, "ta"] = np.nan  # refused by both
    measurements["rh"] = measurements["rh"].round().fillna(50).astype(np.int64)
    rows = measurements.merge(pd.read_csv(holdout_paths[1]), on="building_id", how="left")
    rows = rows.drop(columns=["subject_id"])  # numbers and text: no one Parquet type
    rows.to_csv(tmp_path / "rows.csv", index=False)
    rows.to_parquet(tmp_path / "rows.parquet", index=False)
    expected_path = tmp_path / "expected.csv"
    args = ["predict", "--model", "production", "--input", str(tmp_path / "rows.csv")]
    assert CliRunner().invoke(app, [*args, "--output", str(expected_path)]).exit_code == 0

    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": get_settings().mlflow_uri,
        "PYSPARK_PYTHON": python,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_SUBMIT_ARGS": "--conf spark.ui.enabled=false pyspark-shell",
    }
    script = REPO / "examples" / "spark_udf.py"
    done = subprocess.run(
        [python, str(script), str(tmp_path / "rows.parquet"), str(tmp_path / "scored")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    got = pd.read_parquet(tmp_path / "scored").sort_values("record_id").reset_index(drop=True)
    expected = pd.read_csv(expected_path, keep_default_na=False, na_values=[""])
    expected = expected.sort_values("record_id").reset_index(drop=True)
    assert len(got) == len(rows)
    assert (got["record_id"].to_numpy() == expected["record_id"].to_numpy()).all()
    refused = expected["predicted_class"].isna()
    assert refused.sum() == 5
    assert (got["predicted_class"].isna() == refused).all()
    assert (got.loc[~refused, "predicted_class"] == expected.loc[~refused, "predicted_class"]).all()
    assert (got["reason"].fillna("") == expected["reason"].fillna("")).all()
    for column in ("p_cool", "p_neutral", "p_warm", *HEAD_COLUMNS):
        assert np.allclose(got[column], expected[column], atol=1e-6, equal_nan=True)
