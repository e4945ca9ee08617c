"""The production pointer: a small file saying which artifact is in production.

Written atomically after every promotion or rollback, read by serving and by ``--model
production`` without importing MLflow.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from conforto._fileio import atomic_write_json, file_sha256
from conforto._model.artifact import MANIFEST
from conforto.errors import ArtifactError, NoProductionModel, RegistryError

POINTER = "production.json"
#: What a command that needs the production model says when there is none.
NO_PRODUCTION = (
    "no production model yet: train and promote one (`make run`, or `conforto train`, "
    "`conforto model register DIR`, `conforto model promote VERSION --force`)."
)


@dataclass(frozen=True)
class Pointer:
    """Which version is in production and where its artifact lives."""

    version: str
    artifact: str
    sha256: str
    model_name: str
    updated: str


def artifact_sha256(directory: Path) -> str:
    """Checksum of an artifact: the sha256 of its manifest, which lists every file's sha256."""
    path = directory / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{directory} is not a model artifact: {MANIFEST} is missing.")
    return file_sha256(path)


def write_pointer(registry_dir: Path, pointer: Pointer) -> Path:
    """Atomically write the pointer file into ``registry_dir``."""
    return atomic_write_json(registry_dir / POINTER, asdict(pointer))


def read_pointer(registry_dir: Path) -> Pointer | None:
    """The pointer, or ``None`` when no model was ever promoted."""
    path = registry_dir / POINTER
    if not path.is_file():
        return None
    try:
        return Pointer(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise RegistryError(
            f"{path} is unreadable ({exc}): run `conforto model list` to repair it."
        ) from None


def production_artifact(registry_dir: Path) -> tuple[Pointer, Path]:
    """The production artifact's folder, checked against the pointer's checksum.

    Raises
    ------
    NoProductionModel
        When nothing is in production yet (the message says which commands create a model).
    ArtifactError
        When the artifact is missing or its checksum no longer matches.
    """
    pointer = read_pointer(registry_dir)
    if pointer is None:
        raise NoProductionModel(NO_PRODUCTION)
    directory = Path(pointer.artifact)
    if not directory.is_dir():
        raise ArtifactError(
            f"production version {pointer.version}: artifact {directory} is missing."
        )
    if artifact_sha256(directory) != pointer.sha256:
        raise ArtifactError(
            f"production version {pointer.version}: artifact {directory} does not match its "
            "checksum."
        )
    return pointer, directory
