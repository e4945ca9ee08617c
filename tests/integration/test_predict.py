"""Batch prediction of the database's own format, on unseen buildings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conforto.artifact import load_model
from conforto.cli import app
from conforto.data import load_dataset
from conforto.errors import ColumnError
from conforto.predict import predict_file

pytestmark = pytest.mark.integration


@pytest.fixture
def unseen_csv(holdout_paths: tuple[Path, Path], tmp_path: Path) -> Path:
    frame = pd.read_csv(holdout_paths[0], low_memory=False).head(3000).copy()
    frame.loc[0, "rh"] = 130.0  # impossible: not scored
    frame.loc[1, "vel"] = 3.0  # implausible: scored and flagged
    frame.loc[2, "ta"] = np.nan  # no air temperature: not scored
    path = tmp_path / "unseen.csv"
    frame.to_csv(path, index=False)
    return path


def test_predict_scores_every_row_in_order(
    trained_model: Path, holdout_paths: tuple[Path, Path], unseen_csv: Path, tmp_path: Path
) -> None:
    model = load_model(trained_model)
    out = tmp_path / "pred.csv"
    summary = predict_file(model, unseen_csv, out, metadata=holdout_paths[1], chunk_rows=700)
    result = pd.read_csv(out, keep_default_na=False, na_values=[""])
    source = pd.read_csv(unseen_csv, low_memory=False)
    assert len(result) == len(source) == summary.rows
    assert result["record_id"].tolist() == source["record_id"].tolist()
    assert summary.scored == len(source) - 2
    assert "rh=130 outside 0..100 %" in result.loc[0, "reason"]
    assert np.isnan(result.loc[0, "p_warm"])
    assert pd.isna(result.loc[0, "predicted_class"])
    assert result.loc[2, "reason"] == "missing ta"
    assert "vel=3 implausible" in result.loc[1, "flags"]
    assert result.loc[1, "predicted_class"] in {"cool", "neutral", "warm"}

    scored = result["reason"].isna()
    expected = model.predict_proba(
        load_dataset(unseen_csv, holdout_paths[1], required=()).frame[scored.to_numpy()]
    )
    got = result.loc[scored, ["p_cool", "p_neutral", "p_warm"]].to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_predict_without_metadata_and_with_other_column_names(
    trained_model: Path, tmp_path: Path
) -> None:
    src = tmp_path / "pt.csv"
    pd.DataFrame(
        {
            "Temperatura do ar (°C)": [18.0, 30.0],
            "Umidade relativa (%)": [50.0, 60.0],
            "velocidade_ar": [0.1, 0.1],
            "metabolismo": [1.1, 1.1],
            "vestimenta": [0.5, 0.5],
        }
    ).to_csv(src, index=False)
    out = tmp_path / "pt_pred.csv"
    predict_file(load_model(trained_model), src, out)
    result = pd.read_csv(out)
    assert "record_id" not in result.columns
    assert result["p_warm"][1] > result["p_warm"][0]


def test_predict_refuses_input_without_air_temperature(trained_model: Path, tmp_path: Path) -> None:
    src = tmp_path / "bad.csv"
    pd.DataFrame({"rh": [50.0]}).to_csv(src, index=False)
    with pytest.raises(ColumnError, match="'ta'"):
        predict_file(load_model(trained_model), src, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_cli_evaluate_and_predict(
    trained_model: Path, holdout_paths: tuple[Path, Path], unseen_csv: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    m, d = holdout_paths
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--model",
            str(trained_model),
            "--measurements",
            str(m),
            "--metadata",
            str(d),
            "--out",
            str(tmp_path / "eval"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "eval" / "report.html").is_file()
    assert "probabilistic PMV" in result.output
    result = runner.invoke(
        app,
        [
            "predict",
            "--model",
            str(trained_model),
            "--input",
            str(unseen_csv),
            "--output",
            str(tmp_path / "p.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 not scored" in result.output
    result = runner.invoke(
        app,
        [
            "predict",
            "--model",
            str(tmp_path / "none"),
            "--input",
            str(unseen_csv),
            "--output",
            str(tmp_path / "p2.csv"),
        ],
    )
    assert result.exit_code == 1
    assert "model directory not found" in result.output
