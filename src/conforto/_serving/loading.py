"""Loading a model to serve: production's (a :class:`Runtime`, whose failure ``/ready`` reports)
and, through :func:`warm_predictor`, a challenger's, each answering as its registry version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conforto._serving.runtime import WARM_UP, Predictor
from conforto.errors import ConfortoError, RegistryError

if TYPE_CHECKING:
    from pathlib import Path

    from conforto._settings import Settings

log = logging.getLogger(__name__)


def warm_predictor(directory: Path, version: str, settings: Settings) -> Predictor:
    """The model in ``directory``, warmed up, answering as ``version`` when given, else as the
    version its registration record names (``registered.json``), else as its content id.

    Raises
    ------
    ConfortoError
        When the model cannot be loaded.
    """
    from conforto._model.artifact import load_model
    from conforto._registry.registration import registered_version

    model = load_model(directory)
    version = version or registered_version(directory) or model.version
    predictor = Predictor(model, version, settings.serve.coverage)
    predictor.predict([WARM_UP])
    return predictor


@dataclass(frozen=True)
class Runtime:
    """What the service serves: a predictor, or the reason there is none."""

    predictor: Predictor | None = None
    error: str | None = None
    artifact: Path | None = None
    sha256: str | None = None
    no_production: bool = False


def load_runtime(model_dir: Path | None, settings: Settings) -> Runtime:
    """Load a model; a failure becomes the reason ``/ready`` gives.

    Parameters
    ----------
    model_dir
        Model directory; ``None`` loads the production version named by the registry's
        pointer file (without MLflow).
    settings
        Where the registry's pointer lives.

    Returns
    -------
    Runtime
        The warmed-up predictor with its artifact's checksum, or the error that prevented it.
    """
    from conforto._registry.pointer import artifact_sha256, production_artifact

    try:
        if model_dir is None:
            pointer, directory = production_artifact(settings.registry_dir)
            version = pointer.version
        else:
            directory = model_dir
            version = ""
        predictor = warm_predictor(directory, version, settings)
        return Runtime(predictor, artifact=directory, sha256=artifact_sha256(directory))
    except ConfortoError as exc:
        log.error("no model loaded: %s", exc)
        no_production = isinstance(exc, RegistryError) and model_dir is None  # no pointer
        return Runtime(error=str(exc), no_production=no_production)
