"""Every registered version is an MLflow Model: pyfunc through the registry alias, as MLflow
users load it, answers as ``conforto predict`` does; older versions are upgraded in place."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.types import DataType
from typer.testing import CliRunner

from conforto._cli import app
from conforto._model.artifact import MANIFEST
from conforto._model.heads import COLUMNS as HEAD_COLUMNS
from conforto._model.inputs import REQUIRED_INPUTS
from conforto._registry.model_registry import Registry, open_registry
from conforto._registry.pointer import artifact_sha256
from conforto._settings import get_settings
from conforto._tracking.mlflow_model import MLMODEL, SERVING_DISTRIBUTIONS
from conforto.errors import ArtifactError

pytestmark = pytest.mark.integration
runner = CliRunner()
PRODUCTION_URI = "models:/conforto-thermal-sensation@production"
#: The MLflow Model's own files (the artifact's files are the version's, checksummed).
MLFLOW_FILES = (MLMODEL, "requirements.txt", "python_env.yaml", "conda.yaml")


@pytest.fixture(autouse=True)
def _downloads_under_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow loads a ``models:/`` URI from a new temporary folder it never removes: make it
    the test's own, which pytest removes."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


@pytest.fixture
def production(
    home: Path,  # noqa: ARG001 - for its effect: the template store as home
    trained_model: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Registry:
    """``trained_model`` registered and promoted; MLflow pointed at the project's store."""
    registry = open_registry(get_settings())
    registry.register(trained_model)
    registry.promote("1", force=True)
    uri = get_settings().mlflow_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    return registry


def _database_rows(holdout_paths: tuple[Path, Path], path: Path) -> Path:
    """Unseen buildings' rows in the database's format, joined with their metadata; with rows
    batch prediction refuses, and whole-number columns (read back from CSV as int64)."""
    measurements = pd.read_csv(holdout_paths[0], low_memory=False).head(3000)
    metadata = pd.read_csv(holdout_paths[1]).drop(columns=["records"], errors="ignore")
    frame = measurements.merge(metadata, on="building_id", how="left")
    frame.loc[:9, "ta"] = np.nan  # no ta: refused
    frame.loc[10, "ta"] = 80.0  # impossible: refused
    frame.loc[11, "tg"] = -50.0  # impossible in a checked column that is no model input
    frame["rh"] = frame["rh"].round().fillna(50).astype(np.int64)
    frame["age"] = 30
    frame.to_csv(path, index=False)
    return path


@pytest.mark.usefixtures("production")
def test_the_production_alias_is_a_pyfunc_answering_as_conforto_predict(
    holdout_paths: tuple[Path, Path], tmp_path: Path
) -> None:
    rows = _database_rows(holdout_paths, tmp_path / "rows.csv")
    out = tmp_path / "predicted.csv"
    args = ["predict", "--model", "production", "--input", str(rows), "--output", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    expected = pd.read_csv(out, keep_default_na=False, na_values=[""])

    frame = pd.read_csv(rows, low_memory=False)
    assert frame["rh"].dtype == np.int64
    assert frame["age"].dtype == np.int64
    got = mlflow.pyfunc.load_model(PRODUCTION_URI).predict(frame)

    assert len(got) == len(frame)
    assert (got.index == frame.index).all()
    refused = expected["predicted_class"].isna()
    assert refused.sum() == 12
    assert (got["predicted_class"].isna() == refused).all()
    assert got.loc[11, "reason"].startswith("tg=-50 outside")
    assert (got["reason"].fillna("") == expected["reason"].fillna("")).all()
    assert (got.loc[~refused, "predicted_class"] == expected.loc[~refused, "predicted_class"]).all()
    for column in ("p_cool", "p_neutral", "p_warm", *HEAD_COLUMNS):
        assert np.allclose(got[column], expected[column], atol=1e-6, equal_nan=True)
    sets = got.loc[~refused, "prediction_set"]
    assert (sets == expected.loc[~refused, "prediction_set"]).all()


@pytest.mark.usefixtures("production")
def test_api_shaped_records_and_the_coverage_parameter() -> None:
    model = mlflow.pyfunc.load_model(PRODUCTION_URI)
    records = pd.DataFrame(
        [
            {"ta": 30, "rh": 60, "vel": 0, "met": 1, "clo": 0, "season": "summer"},
            {"ta": 18, "rh": 40, "vel": 0.1, "met": 1.2, "clo": 1.0, "season": "winter"},
        ]
    )
    assert records["ta"].dtype == np.int64
    wide = model.predict(records, params={"coverage": 0.99})
    narrow = model.predict(records, params={"coverage": 0.5})
    assert list(wide["predicted_class"]) == ["warm", "cool"]
    for w, n in zip(wide["prediction_set"], narrow["prediction_set"], strict=True):
        assert set(n.split("|")) <= set(w.split("|"))
    assert sum(len(s.split("|")) for s in wide["prediction_set"]) > sum(
        len(s.split("|")) for s in narrow["prediction_set"]
    )
    with pytest.raises(ValueError, match=r"0\.5"):
        model.predict(records, params={"coverage": 0.2})
    with pytest.raises(MlflowException, match="clo"):  # a required input of the API
        model.predict(records.drop(columns=["clo"]))


@pytest.mark.usefixtures("production")
def test_signature_example_and_pinned_environment() -> None:
    model = mlflow.pyfunc.load_model(PRODUCTION_URI)
    signature = model.metadata.signature
    inputs = {c.name: c for c in signature.inputs.inputs}
    assert {n for n, c in inputs.items() if c.required} == set(REQUIRED_INPUTS)
    assert inputs["season"].type == DataType.string
    assert not inputs["season"].required
    assert [c.name for c in signature.outputs.inputs][:4] == [
        "predicted_class",
        "p_cool",
        "p_neutral",
        "p_warm",
    ]
    assert signature.params.to_dict()[0] == {
        "name": "coverage",
        "type": "double",
        "default": 0.9,
        "shape": None,
    }
    assert model.predict(model.input_example)["predicted_class"].notna().all()
    folder = Path(mlflow.artifacts.download_artifacts(PRODUCTION_URI))
    pinned = (folder / "requirements.txt").read_text().split()
    assert {p.split("==")[0] for p in pinned} == set(SERVING_DISTRIBUTIONS)
    assert all("==" in p for p in pinned)


def test_upgrade_makes_older_versions_mlflow_models_without_touching_their_files(
    production: Registry, second_model: Path
) -> None:
    production.register(second_model)
    for version in production.store.versions():  # as versions registered before this release
        artifact = production.store.local_artifact(version)
        for name in (*MLFLOW_FILES, "input_example.json", "serving_input_example.json"):
            (artifact / name).unlink()
    with pytest.raises(MlflowException, match="MLmodel"):
        mlflow.pyfunc.load_model(PRODUCTION_URI)
    before = {
        v.version: artifact_sha256(production.store.local_artifact(v))
        for v in production.store.versions()
    }
    history = production.history()

    assert runner.invoke(app, ["model", "upgrade"]).exit_code == 1  # neither versions nor --all
    result = runner.invoke(app, ["model", "upgrade", "1"])
    assert result.exit_code == 0, result.output
    assert "version 1" in result.output
    result = runner.invoke(app, ["model", "upgrade", "--all"])
    assert result.exit_code == 0
    assert "version 2" in result.output
    assert "1," not in result.output
    assert "nothing to upgrade" in runner.invoke(app, ["model", "upgrade", "--all"]).output

    assert (
        mlflow.pyfunc.load_model(PRODUCTION_URI)
        .predict(pd.DataFrame([{"ta": 25, "rh": 50, "vel": 0.1, "met": 1.2, "clo": 0.5}]))[
            "predicted_class"
        ]
        .notna()
        .all()
    )
    for version in production.store.versions():
        artifact = production.store.local_artifact(version)
        assert artifact_sha256(artifact) == before[version.version]
        assert all((artifact / name).is_file() for name in MLFLOW_FILES)
        production.resolve(version.version)  # every file still matches the manifest
    upgrades = [m for m in production.audit() if m.action == "upgrade"]
    assert [m.to for m in upgrades] == ["1", "2"]
    assert upgrades[0].command == "conforto model upgrade"
    assert production.history() == history  # upgrades are not production moves
    second = production.store.get("2")
    assert Model.load(production.store.local_artifact(second)).run_id == second.run_id


def test_a_version_registered_in_format_1_loads_through_pyfunc_once_upgraded(
    production: Registry,
) -> None:
    # as the previous release registered it: the same files, its manifest of format 1
    version = production.store.get("1")
    artifact = production.store.local_artifact(version)
    manifest = json.loads((artifact / MANIFEST).read_text())
    (artifact / MANIFEST).write_text(json.dumps({**manifest, "format_version": 1}, indent=2) + "\n")
    production.store.set_tag("1", "artifact_sha256", artifact_sha256(artifact))
    with pytest.raises(ArtifactError, match="conforto model upgrade"):
        mlflow.pyfunc.load_model(PRODUCTION_URI)

    result = runner.invoke(app, ["model", "upgrade", "--all"])
    assert result.exit_code == 0, result.output
    assert "upgraded: version 1" in result.output
    model = mlflow.pyfunc.load_model(PRODUCTION_URI)
    room = pd.DataFrame([{"ta": 24.0, "rh": 50.0, "vel": 0.1, "met": 1.1, "clo": 0.6}])
    assert model.predict(room)["predicted_class"].iloc[0] in ("cool", "neutral", "warm")
    assert production.store.get("1").tags["artifact_sha256"] == artifact_sha256(artifact)
    assert production.resolve("production").artifact == artifact


@pytest.mark.usefixtures("production")
def test_versions_name_the_stable_loader_path_that_still_loads() -> None:
    # every MLmodel ever registered names conforto.pyfunc (the module moved to conforto._model):
    # the old path must keep loading, whatever the package's layout
    model = mlflow.pyfunc.load_model(PRODUCTION_URI)
    assert model.metadata.flavors["python_function"]["loader_module"] == "conforto.pyfunc"
    room = pd.DataFrame([{"ta": 24.0, "rh": 50.0, "vel": 0.1, "met": 1.1, "clo": 0.6}])
    assert model.predict(room)["predicted_class"].iloc[0] in ("cool", "neutral", "warm")
