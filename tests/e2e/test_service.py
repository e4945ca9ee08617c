"""The prediction service over real HTTP, against uvicorn started by the tests."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

import httpx
import numpy as np
import pandas as pd
import pytest

from conforto._data.categories import normalise_value
from conforto._model.artifact import load_model
from conforto._model.heads import COLUMNS as HEAD_COLUMNS
from conforto._model.inputs import NUMERIC_INPUTS
from conforto._model.predict import predict_file
from conforto._registry.model_registry import open_registry
from conforto._settings import get_settings
from tests.factories import regrouped_sets

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

CLASSES = ["cool", "neutral", "warm"]
OBS = {"ta": 24.5, "rh": 55.0, "vel": 0.15, "met": 1.1, "clo": 0.6}


@pytest.fixture(scope="module")
def running(trained_model: Path, tmp_path_factory: pytest.TempPathFactory):
    from tests.processes import Server

    server = Server(
        ["--model", str(trained_model)],
        {
            "CONFORTO_SERVE__MAX_BATCH": "50",
            "CONFORTO_SERVE__MAX_BODY_BYTES": "20000",
            "CONFORTO_HOME": str(tmp_path_factory.mktemp("serve-home")),
        },
    )
    server.wait_healthy()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client
    server.stop()


def test_health_ready_root_and_model(running: httpx.Client) -> None:
    health = running.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "healthy"}
    assert running.get("/ready").json()["status"] == "ready"
    root = running.get("/").json()
    assert root["service"] == "conforto"
    assert root["docs"] == "/docs"
    info = running.get("/model").json()
    assert info["metrics"]["macro_f1"] > 0.3
    assert {f["name"] for f in info["features"]} >= {"ta", "pmv_iso"}


def test_predict_returns_probabilities_pmv_and_notes(running: httpx.Client) -> None:
    response = running.post("/predict", json=OBS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "prediction_id",
        "predicted_class",
        "probabilities",
        "model_version",
        "pmv",
        "ppd",
        "notes",
        "prediction_set",
        "coverage",
        "dissatisfied",
        "unacceptable",
        "preference",
        "adaptation",
    }
    assert body["adaptation"] is None  # no site named: the model's own answer
    assert sum(body["probabilities"].values()) == pytest.approx(1.0)
    assert 0 < body["dissatisfied"] < 1
    assert 0 < body["unacceptable"] < 1
    assert set(body["preference"]) == {"cooler", "no_change", "warmer"}
    assert sum(body["preference"].values()) == pytest.approx(1.0)
    assert body["predicted_class"] in body["probabilities"]
    assert -1 < body["pmv"] < 1
    assert any("tr" in note for note in body["notes"])
    hot = running.post("/predict", json={**OBS, "ta": 33.0, "tr": 33.0, "rh": 70.0}).json()
    assert hot["pmv"] is None  # outside ISO 7730's limits
    assert hot["probabilities"]["warm"] > body["probabilities"]["warm"]


@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        ({**OBS, "rh": 130}, "rh", "less than or equal to 100"),
        ({**OBS, "vel": -0.1}, "vel", "greater than or equal to 0"),
        ({k: v for k, v in OBS.items() if k != "clo"}, "clo", "Field required"),
        ({**OBS, "ta": "warm"}, "ta", "valid number"),
        ({**OBS, "colour": "red"}, "colour", "Extra inputs are not permitted"),
        ({**OBS, "season": "monsoon"}, "season", "'summer'"),
        ({**OBS, "ta": None}, "ta", "valid number"),
    ],
)
def test_bad_input_is_422_naming_field_and_value(
    running: httpx.Client, body: dict[str, object], field: str, text: str
) -> None:
    response = running.post("/predict", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert any(d["field"] == field and text in d["message"] for d in detail), detail


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(running: httpx.Client, token: str) -> None:
    raw = json.dumps(OBS).replace("24.5", token)
    response = running.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "ta"


def test_malformed_json_is_422_not_500(running: httpx.Client) -> None:
    response = running.post(
        "/predict", content=b"{ta: 1", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "Traceback" not in response.text


def test_batch_limits(running: httpx.Client) -> None:
    ok = running.post("/predict/batch", json={"observations": [OBS, {**OBS, "ta": 28.0}]})
    assert ok.status_code == 200
    assert len(ok.json()["predictions"]) == 2
    too_many = running.post("/predict/batch", json={"observations": [OBS] * 51})
    assert too_many.status_code == 413
    assert "at most 50" in too_many.json()["detail"]
    huge = running.post("/predict/batch", json={"observations": [OBS] * 400})
    assert huge.status_code == 413
    empty = running.post("/predict/batch", json={"observations": []})
    assert empty.status_code == 422


def served_equals_batch(
    client: httpx.Client, model_dir: Path, holdout_paths: tuple[Path, Path], folder: Path
) -> pd.DataFrame:
    """45 unseen rooms (with their climates) through ``/predict/batch`` and through batch
    prediction of the same model: the same probabilities, sets and occupant responses. The
    rooms."""
    frame = pd.read_csv(holdout_paths[0], low_memory=False).merge(
        pd.read_csv(holdout_paths[1])[["building_id", "climate"]], on="building_id"
    )
    cols = [c for c in (*NUMERIC_INPUTS, "season", "gender", "climate") if c in frame.columns]
    rows = frame.dropna(subset=["ta", "rh", "vel", "met", "clo"])[cols].sample(45, random_state=0)
    rows["climate"] = rows["climate"].map(lambda v: normalise_value("climate", v))
    rows = rows[rows["gender"].isin(["male", "female"]) | rows["gender"].isna()]
    observations = [{k: v for k, v in r.items() if pd.notna(v)} for r in rows.to_dict("records")]
    served = client.post("/predict/batch", json={"observations": observations})
    assert served.status_code == 200, served.text
    answers = served.json()["predictions"]
    got = np.array([[p["probabilities"][c] for c in ("cool", "neutral", "warm")] for p in answers])
    src = folder / "rows.csv"
    rows.to_csv(src, index=False)
    predict_file(load_model(model_dir), src, folder / "out.csv")
    batch = pd.read_csv(folder / "out.csv")
    np.testing.assert_allclose(got, batch[["p_cool", "p_neutral", "p_warm"]].to_numpy(), atol=1e-6)
    sets = ["|".join(p["prediction_set"]) for p in answers]
    assert sets == batch["prediction_set"].tolist()  # both at the default level, 0.9
    responses = np.array(
        [[p["dissatisfied"], p["unacceptable"], *p["preference"].values()] for p in answers]
    )
    np.testing.assert_allclose(responses, batch[list(HEAD_COLUMNS)].to_numpy(), atol=1e-6)
    return rows


def test_service_matches_batch_prediction(
    running: httpx.Client, trained_model: Path, holdout_paths: tuple[Path, Path], tmp_path: Path
) -> None:
    served_equals_batch(running, trained_model, holdout_paths, tmp_path)
    calibration = load_model(trained_model).conformal
    assert calibration is not None
    assert calibration.by == "all"  # the default


def test_sets_calibrated_per_climate_read_each_rooms_climate(
    serve, trained_model: Path, holdout_paths: tuple[Path, Path], tmp_path: Path
) -> None:
    model_dir = regrouped_sets(trained_model, "climate", tmp_path / "by-climate")
    calibration = load_model(model_dir).conformal
    assert calibration is not None
    assert calibration.by == "climate"
    server = serve("--model", str(model_dir))
    with httpx.Client(base_url=server.url, timeout=10) as client:
        rows = served_equals_batch(client, model_dir, holdout_paths, tmp_path)
    assert set(rows["climate"]) & set(calibration.climates)  # some rows read their climate's
    assert set(rows["climate"]) - set(calibration.climates)  # and some all votes'


def test_prediction_sets_at_the_default_or_the_asked_level(running: httpx.Client) -> None:
    sets = {}
    for level in (None, 0.5, 0.9, 0.99):
        params = {} if level is None else {"coverage": level}
        body = running.post("/predict", json=OBS, params=params).json()
        assert body["coverage"] == (0.9 if level is None else level)
        assert body["predicted_class"] in body["prediction_set"]
        assert body["prediction_set"] == sorted(body["prediction_set"], key=CLASSES.index)
        sets[level] = set(body["prediction_set"])
    assert sets[None] == sets[0.9]
    assert sets[0.5] <= sets[0.9] <= sets[0.99]
    batch = running.post(
        "/predict/batch", json={"observations": [OBS, OBS]}, params={"coverage": 0.99}
    ).json()["predictions"]
    assert [(set(p["prediction_set"]), p["coverage"]) for p in batch] == [(sets[0.99], 0.99)] * 2


@pytest.mark.parametrize("level", ["0.3", "1", "high", "nan"])
def test_a_coverage_outside_its_bounds_is_422(running: httpx.Client, level: str) -> None:
    for path, body in (("/predict", OBS), ("/predict/batch", {"observations": [OBS]})):
        response = running.post(path, json=body, params={"coverage": level})
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["field"] == "query.coverage"


def test_the_openapi_schema_documents_sets_and_their_level(running: httpx.Client) -> None:
    schema = running.get("/openapi.json").json()
    for path in ("/predict", "/predict/batch"):
        params = schema["paths"][path]["post"]["parameters"]
        (query,) = [p for p in params if p["name"] == "coverage"]
        assert query["in"] == "query"
        bounds = query["schema"]["anyOf"][0]
        assert (bounds["minimum"], bounds["maximum"]) == (0.5, 0.99)
        assert "CONFORTO_SERVE__COVERAGE" in query["description"]
    prediction = schema["components"]["schemas"]["Prediction"]["properties"]
    assert "conformal" in prediction["prediction_set"]["description"]
    assert "coverage" in prediction
    assert "data-driven PPD" in prediction["dissatisfied"]["description"]
    assert "unacceptable" in prediction["unacceptable"]["description"]
    preference = schema["components"]["schemas"]["Preference"]["properties"]
    assert set(preference) == {"cooler", "no_change", "warmer"}


def test_a_model_trained_without_occupants_answers_serves_them_null(
    serve, model_without_heads: Path
) -> None:
    server = serve("--model", str(model_without_heads), env={"CONFORTO_SERVE__COVERAGE": "0.8"})
    with httpx.Client(base_url=server.url, timeout=10) as client:
        body = client.post("/predict", json=OBS, params={"coverage": 0.95}).json()
        assert body["predicted_class"] in {"cool", "neutral", "warm"}
        assert body["coverage"] == 0.95
        assert body["predicted_class"] in body["prediction_set"]
        assert (body["dissatisfied"], body["unacceptable"], body["preference"]) == (None,) * 3


def test_the_service_default_level_comes_from_the_settings(serve, trained_model: Path) -> None:
    server = serve("--model", str(trained_model), env={"CONFORTO_SERVE__COVERAGE": "0.8"})
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.post("/predict", json=OBS).json()["coverage"] == 0.8


@pytest.mark.usefixtures("home")
def test_missing_production_model_keeps_process_up(serve) -> None:
    server = serve()
    assert httpx.get(f"{server.url}/health").json() == {"status": "healthy"}
    ready = httpx.get(f"{server.url}/ready")
    assert ready.status_code == 503
    assert "no production model yet" in ready.json()["detail"]
    assert "conforto train" in ready.json()["detail"]
    assert httpx.post(f"{server.url}/predict", json=OBS).status_code == 503


def test_corrupt_model_keeps_process_up(serve, trained_model: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(trained_model, broken)
    (broken / "booster.txt").write_text("garbage")
    server = serve("--model", str(broken))
    ready = httpx.get(f"{server.url}/ready")
    assert ready.status_code == 503
    assert "corrupt" in ready.json()["detail"]


def test_serves_production_from_the_pointer(serve, trained_model: Path) -> None:
    registry = open_registry(get_settings())
    registry.register(trained_model)
    registry.promote("1", force=True)
    server = serve()
    assert httpx.get(f"{server.url}/ready").json() == {"status": "ready", "model_version": "1"}
    assert httpx.post(f"{server.url}/predict", json=OBS).json()["model_version"] == "1"
