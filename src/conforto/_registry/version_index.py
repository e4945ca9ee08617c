"""The embedded registry's versions, indexed beside the production pointer: ``conforto model
list`` answers from the index without importing MLflow.

The registry rewrites the index whenever it reads or changes its versions. The index holds the
store's stamp (:func:`conforto._tracking.mlflow_store.registry_stamp`, read with SQLite alone), so
a store changed since (by another program, or a command killed midway) is noticed and the
versions are read from MLflow again; so is anything a reconciliation would repair.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from conforto._fileio import atomic_write_json
from conforto._model.artifact import verify_artifact
from conforto._registry.audit import production_history
from conforto._registry.journal import FileJournal
from conforto._registry.pointer import NO_PRODUCTION, artifact_sha256, read_pointer
from conforto._tracking.mlflow_store import registry_stamp
from conforto._tracking.model_version import ModelVersion
from conforto.errors import ArtifactError, NoProductionModel, RegistryError

if TYPE_CHECKING:
    from conforto._settings import Settings

INDEX = "versions.json"
PRODUCTION = "production"


class VersionIndex:
    """The index file of one embedded store's versions.

    Parameters
    ----------
    path
        The index file, ``CONFORTO_HOME/registry/versions.json``.
    tracking_uri, model_name
        The embedded store (a ``sqlite:///`` URI) and its registered model.
    """

    def __init__(self, path: Path, tracking_uri: str, model_name: str) -> None:
        self.path = path
        self.tracking_uri = tracking_uri
        self.model_name = model_name

    def _stamp(self) -> str | None:
        return registry_stamp(self.tracking_uri, self.model_name)

    def write(self, versions: list[ModelVersion]) -> None:
        """Index ``versions``, just read from the store, with the store's stamp."""
        stamp = self._stamp()
        if stamp is None:
            return
        records = [
            {**asdict(v), "artifact": str(v.artifact) if v.artifact else None} for v in versions
        ]
        atomic_write_json(self.path, {"stamp": stamp, "versions": records})

    def read(self) -> list[ModelVersion] | None:
        """The indexed versions, or ``None`` when there is no index or the store has changed
        since it was written.
        """
        try:
            data = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if not isinstance(data, dict) or data.get("stamp") != self._stamp():
            return None
        try:
            return [
                ModelVersion(**{**r, "artifact": Path(r["artifact"]) if r["artifact"] else None})
                for r in data["versions"]
            ]
        except (KeyError, TypeError):
            return None


def version_index(settings: Settings) -> VersionIndex | None:
    """The index of the embedded registry's versions; ``None`` with a tracking server."""
    if settings.tracking.uri or settings.tracking.registry_uri:
        return None
    return VersionIndex(
        settings.registry_dir / INDEX, settings.mlflow_uri, settings.tracking.model_name
    )


def indexed_versions(settings: Settings) -> list[ModelVersion] | None:
    """Every version of the embedded registry from its index, when the index is current and
    nothing needs reconciling (no interrupted move; the audit log, the ``production`` tags and
    the pointer agree with the alias); ``None`` otherwise: read the registry.

    A home whose store was never made holds no version (and none is made to say so).
    """
    index = version_index(settings)
    if index is None:
        return None
    journal = FileJournal(settings.registry_dir)
    if journal.interrupted() is not None:
        return None
    if not Path(settings.mlflow_uri.removeprefix("sqlite:///")).exists():
        empty = read_pointer(settings.registry_dir) is None and not journal.moves()
        return [] if empty else None
    found = index.read()
    if found is None:
        return None
    current = next((v.version for v in found if PRODUCTION in v.aliases), None)
    history = production_history(journal.moves())
    if (history[-1] if history else None) != current:
        return None
    if current is not None:
        pointer = read_pointer(settings.registry_dir)
        tagged = [v.version for v in found if PRODUCTION in v.tags]
        if tagged != [current] or pointer is None or pointer.version != current:
            return None
    return found


def indexed_version(settings: Settings, version: str) -> tuple[ModelVersion, Path] | None:
    """A version (or ``production``) and its verified local artifact, from the index (see
    :func:`indexed_versions`); ``None``: read the registry (which also fetches an artifact that
    no longer matches).

    Raises
    ------
    NoProductionModel
        For ``production`` when no version is in production.
    RegistryError
        When the version does not exist.
    """
    found = indexed_versions(settings)
    if found is None:
        return None
    if version == PRODUCTION:
        current = next((v.version for v in found if PRODUCTION in v.aliases), None)
        if current is None:
            raise NoProductionModel(NO_PRODUCTION)
        version = current
    match = next((v for v in found if v.version == version), None)
    if match is None:
        raise RegistryError(
            f"version {version!r} of {settings.tracking.model_name} does not exist: "
            "see `conforto model list`."
        )
    artifact = match.artifact
    try:
        if artifact is None or artifact_sha256(artifact) != match.tags.get("artifact_sha256"):
            return None
        verify_artifact(artifact)
    except ArtifactError:
        return None
    return match, artifact
