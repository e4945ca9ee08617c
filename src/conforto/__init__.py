"""conforto: predict how building occupants feel about their thermal environment.

The public API, for use from Python (the command line, ``conforto``, covers the same ground)::

    from pathlib import Path

    import conforto

    data = conforto.load_dataset("db_measurements_v2.1.0.csv.gz", "db_metadata.csv")
    result = conforto.train_model(data.frame, config=conforto.TrainConfig(folds=3))
    model = conforto.write_model(result, data.frame, Path("models/candidate"))
    scored = conforto.score_frame(model, conforto.prepare_frame(rooms))  # a pyarrow Table

    registry = conforto.open_registry(conforto.get_settings())
    registry.register(Path("models/candidate"))
    same = conforto.load_model("models/candidate")

Every name is imported when first used (:pep:`562`): ``import conforto`` loads the standard
library alone, so the command line and the service start no slower for it. Errors are
:class:`ConfortoError` and its subclasses (:mod:`conforto.errors`).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conforto._data.load import Dataset, load_dataset
    from conforto._model.artifact import ThermalModel, load_model
    from conforto._model.predict import predict_file, prepare_frame, score_frame
    from conforto._registry.model_registry import Registry, open_registry
    from conforto._settings import Settings, get_settings
    from conforto._training.save import write_model
    from conforto._training.train import TrainConfig, TrainingResult, train_model
    from conforto.errors import (
        ArtifactError,
        ConfigError,
        ConfortoError,
        DataError,
        NoProductionModel,
        RegistryError,
    )

#: Each public name and the module that defines it.
_PUBLIC = {
    "Dataset": "conforto._data.load",
    "load_dataset": "conforto._data.load",
    "TrainConfig": "conforto._training.train",
    "TrainingResult": "conforto._training.train",
    "train_model": "conforto._training.train",
    "write_model": "conforto._training.save",
    "ThermalModel": "conforto._model.artifact",
    "load_model": "conforto._model.artifact",
    "prepare_frame": "conforto._model.predict",
    "score_frame": "conforto._model.predict",
    "predict_file": "conforto._model.predict",
    "Registry": "conforto._registry.model_registry",
    "open_registry": "conforto._registry.model_registry",
    "Settings": "conforto._settings",
    "get_settings": "conforto._settings",
    "ConfortoError": "conforto.errors",
    "ConfigError": "conforto.errors",
    "DataError": "conforto.errors",
    "ArtifactError": "conforto.errors",
    "RegistryError": "conforto.errors",
    "NoProductionModel": "conforto.errors",
}

__all__ = [  # noqa: RUF022 - in the order of the table above
    "__version__",
    "Dataset",
    "load_dataset",
    "TrainConfig",
    "TrainingResult",
    "train_model",
    "write_model",
    "ThermalModel",
    "load_model",
    "prepare_frame",
    "score_frame",
    "predict_file",
    "Registry",
    "open_registry",
    "Settings",
    "get_settings",
    "ConfortoError",
    "ConfigError",
    "DataError",
    "ArtifactError",
    "RegistryError",
    "NoProductionModel",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from its module when first asked for; ``__version__`` read
    from the installed package's metadata (the command line starts without reading it).
    """
    if name in _PUBLIC:
        found = getattr(import_module(_PUBLIC[name]), name)
    elif name == "__version__":
        from conforto._lineage import package_version

        found = package_version()
    else:
        raise AttributeError(f"module 'conforto' has no attribute {name!r}")
    globals()[name] = found
    return found


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
