"""Load YAML config files into validated pydantic models."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from conforto.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

M = TypeVar("M", bound=BaseModel)


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Read ``path`` (YAML mapping) into ``model``.

    Parameters
    ----------
    path
        YAML file.
    model
        Pydantic model class to validate against.

    Returns
    -------
    pydantic.BaseModel
        The validated config.

    Raises
    ------
    ConfigError
        When the file is missing, not YAML, not a mapping, or has invalid values; the message
        names the file, the key and the reason.
    """
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, not {type(data).__name__}.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid config {path}: {problems}.") from None
