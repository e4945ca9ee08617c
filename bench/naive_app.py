"""The naive way to serve the same model, as a baseline for ``bench/serving.py``.

Per request: a one-row pandas DataFrame through a scikit-learn ``Pipeline`` (encode with the
DataFrame feature code, then the booster), as a generic model server would do it.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
from fastapi import FastAPI
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from conforto._model.artifact import load_model
from conforto._model.inputs import encode


def create() -> FastAPI:
    """The naive app, serving the model in ``NAIVE_MODEL``."""
    model = load_model(os.environ["NAIVE_MODEL"])
    pipeline = Pipeline(
        [
            ("encode", FunctionTransformer(lambda frame: encode(frame, model.spec))),
            ("score", FunctionTransformer(model.predict_matrix)),
        ]
    )
    app = FastAPI()

    @app.get("/ready")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/predict")
    def predict(observation: dict[str, Any]) -> dict[str, Any]:
        proba = pipeline.transform(pd.DataFrame([observation]))[0]
        return {
            "probabilities": dict(zip(("cool", "neutral", "warm"), proba.tolist(), strict=True))
        }

    return app
