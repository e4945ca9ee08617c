"""The registry version beside a copy of its artifact: ``registered.json``.

A model's manifest names it by content (its booster's sha256), never by the registry's
number: the same artifact may be version 3 of one registry and version 1 of another, and the
manifest is checksummed. ``conforto model download`` writes this small record next to the
manifest instead, so that what carries the copy on (an image built from it, a service serving
it) knows which registered version it is without asking the registry again. The record names
the manifest's sha256: moved to another artifact, it is refused.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from conforto._fileio import atomic_write_json
from conforto._model.artifact import REGISTRATION
from conforto._registry.pointer import artifact_sha256
from conforto.errors import ArtifactError

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class Registration:
    """Which registered version an artifact's copy is."""

    version: str
    model_name: str
    #: The sha256 of the artifact's manifest (:func:`artifact_sha256`).
    sha256: str


def write_registration(directory: Path, version: str, model_name: str) -> Registration:
    """Record beside the artifact in ``directory`` that it is ``version`` of ``model_name``."""
    record = Registration(version, model_name, artifact_sha256(directory))
    atomic_write_json(directory / REGISTRATION, asdict(record))
    return record


def read_registration(directory: Path) -> Registration | None:
    """The record beside the artifact in ``directory``; ``None`` when there is none.

    Raises
    ------
    ArtifactError
        When the record is unreadable, or names another artifact than the one beside it.
    """
    path = directory / REGISTRATION
    if not path.is_file():
        return None
    try:
        record = Registration(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise ArtifactError(
            f"{path} is unreadable ({exc}): remove it, or download the version again "
            "(`conforto model download VERSION --out DIR`)."
        ) from None
    if record.sha256 != artifact_sha256(directory):
        raise ArtifactError(
            f"{path} says version {record.version} of another artifact (its manifest's sha256 "
            "differs): remove it, or download the version again."
        )
    return record


def registered_version(directory: Path) -> str | None:
    """The registry version of the artifact in ``directory`` when its record says it (see
    :func:`read_registration`), else ``None``.
    """
    record = read_registration(directory)
    return None if record is None else record.version
