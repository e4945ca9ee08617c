"""The model as an MLflow ``python_function``: what MLflow calls when it loads a version.

Every registered version is an MLflow Model: beside the artifact's own files, an ``MLmodel``
names this module as the loader, so ``mlflow.pyfunc.load_model("models:/…@production")``,
``mlflow models serve`` and ``mlflow.pyfunc.spark_udf`` all score through
:func:`conforto._model.predict.score_frame`, as ``conforto predict`` does. The module imports no
MLflow: :mod:`conforto._tracking.mlflow_model` writes the ``MLmodel`` from the declarations here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from conforto._data.bounds import PHYSICAL_BOUNDS
from conforto._model.artifact import ThermalModel, load_model
from conforto._model.heads import COLUMNS as HEAD_COLUMNS
from conforto._model.inputs import INPUTS
from conforto._model.predict import OUTPUT_COLUMNS, prepare_frame, score_frame
from conforto._settings import DEFAULT_LEVEL
from conforto._uncertainty.sets import check_level


@dataclass(frozen=True)
class Column:
    """One column of the model signature.

    Attributes
    ----------
    name
        Column name (the database's and the API's vocabulary).
    kind
        ``"number"`` (any numeric dtype: whole numbers are numbers too) or ``"text"``.
    required
        The signature refuses input without the column.
    """

    name: str
    kind: str
    required: bool = False


#: The inputs: the API's fields, then the database's other measured columns that batch
#: prediction checks against their physical limits (a row with an impossible value is refused).
INPUT_COLUMNS: tuple[Column, ...] = (
    *(Column(i.name, "number" if i.kind == "numeric" else "text", i.required) for i in INPUTS),
    *(
        Column(name, "number")
        for name in PHYSICAL_BOUNDS
        if name not in {i.name for i in INPUTS} and name != "thermal_sensation"
    ),
)
#: The outputs, one row per input row: batch prediction's columns (``record_id`` aside).
OUTPUT_NUMBERS = ("p_cool", "p_neutral", "p_warm", *HEAD_COLUMNS)
OUTPUTS = tuple(c for c in OUTPUT_COLUMNS if c != "record_id")
#: Prediction parameters and their defaults.
PARAMS: dict[str, float] = {"coverage": DEFAULT_LEVEL}


class PyfuncModel:
    """A loaded version, scoring like ``conforto predict``.

    Parameters
    ----------
    model
        The loaded artifact.
    """

    def __init__(self, model: ThermalModel) -> None:
        self.model = model

    def predict(
        self, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Classes, probabilities and prediction sets of observations.

        Parameters
        ----------
        model_input
            Observations with the database's or the API's column names (any spelling
            ``conforto predict`` resolves); temperatures in °C, humidity in %, air speed in m/s,
            metabolic rate in met, clothing in clo.
        params
            ``coverage``: confidence level of the prediction sets, 0.5 to 0.99 (default 0.9).

        Returns
        -------
        pandas.DataFrame
            :data:`OUTPUTS` with ``model_input``'s index. A row that cannot be scored (no ``ta``,
            an impossible value) has a null class and probabilities, and says why in ``reason``.

        Raises
        ------
        ValueError
            When ``coverage`` is outside 0.5 to 0.99.
        conforto.errors.DataError
            When ``ta`` is missing or a numeric column holds text.
        """
        coverage = float((params or {}).get("coverage", DEFAULT_LEVEL))
        check_level(coverage)
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        scored = score_frame(self.model, prepare_frame(frame, source="model input"), coverage)
        out: pd.DataFrame = scored.select(list(OUTPUTS)).to_pandas()
        out.index = frame.index
        return out


def _load_pyfunc(path: str) -> PyfuncModel:
    """MLflow's entry point: the version stored at ``path`` (every file checked)."""
    return PyfuncModel(load_model(Path(path)))
