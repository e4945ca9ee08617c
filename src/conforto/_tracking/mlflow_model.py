"""The MLflow Model beside every registered artifact: ``MLmodel``, signature, environment.

:func:`write_mlflow_model` writes what makes a version an MLflow Model (the ``python_function``
flavor loading through :mod:`conforto._model.pyfunc` (through the stable path
:mod:`conforto.pyfunc`), the signature, an input example, pinned requirements) into a folder of its
own; the registry adds those files to the version's artifact, whose own files and checksums stay as
they are.
"""

from __future__ import annotations

import logging
import warnings
from importlib.metadata import version
from typing import TYPE_CHECKING

from conforto._model.inputs import EXAMPLE_OBSERVATION
from conforto._model.pyfunc import INPUT_COLUMNS, OUTPUT_NUMBERS, OUTPUTS, PARAMS

if TYPE_CHECKING:
    from pathlib import Path

    from mlflow.models import ModelSignature

#: The file that makes a folder an MLflow Model.
MLMODEL = "MLmodel"
#: What scoring imports, pinned to this environment's versions (with conforto itself).
SERVING_DISTRIBUTIONS = ("conforto", "mlflow-skinny", "lightgbm", "numpy", "pandas", "pyarrow")


def requirements() -> list[str]:
    """Pinned requirements of the model's environment (``name==version``)."""
    return [f"{name}=={version(name)}" for name in SERVING_DISTRIBUTIONS]


def signature() -> ModelSignature:
    """The model signature.

    Inputs are the API's fields (required ones required) and the other measured columns that
    are checked; numbers are declared ``any`` because MLflow's ``double`` refuses whole-number
    (int64) columns, and :func:`conforto._model.predict.prepare_frame` converts and checks them
    instead.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
    from mlflow.types.schema import AnyType

    number = AnyType()  # type: ignore[no-untyped-call]
    inputs = Schema(
        [
            ColSpec(number if c.kind == "number" else "string", c.name, required=c.required)
            for c in INPUT_COLUMNS
        ]
    )
    outputs = Schema(
        [
            ColSpec("double" if name in OUTPUT_NUMBERS else "string", name, required=False)
            for name in OUTPUTS
        ]
    )
    params = ParamSchema([ParamSpec(name, "double", value) for name, value in PARAMS.items()])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def write_mlflow_model(target: Path, *, run_id: str | None = None) -> Path:
    """Write the MLflow Model files of a conforto artifact into the new folder ``target``.

    Parameters
    ----------
    target
        A folder that does not exist yet (or is empty).
    run_id
        The MLflow run whose ``model`` artifact path holds the version.

    Returns
    -------
    Path
        ``target``, holding ``MLmodel``, the environment files and the input example.
    """
    import mlflow.pyfunc
    import pandas as pd
    from mlflow.models import Model

    for name in ("mlflow", "mlflow.pyfunc", "mlflow.utils.requirements_utils"):
        logging.getLogger(name).setLevel(logging.ERROR)  # schema notes and version mismatches
    with warnings.catch_warnings():  # MLflow compares an index with a range: pandas 4 notes it
        warnings.filterwarnings("ignore", "Operation with range is deprecated")
        mlflow.pyfunc.save_model(
            str(target),
            loader_module="conforto.pyfunc",
            mlflow_model=Model(run_id=run_id, artifact_path="model"),
            signature=signature(),
            input_example=pd.DataFrame([EXAMPLE_OBSERVATION]),
            pip_requirements=requirements(),
        )
    return target
