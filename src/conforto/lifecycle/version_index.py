"""The embedded registry's versions, indexed beside the production pointer: ``conforto model
list`` answers from the index without importing MLflow.

The registry rewrites the index whenever it reads or changes its versions. The index holds the
store's stamp (:func:`conforto.tracking.mlflow_store.registry_stamp`, read with SQLite alone), so
a store changed since (by another program, or a command killed midway) is noticed and the
versions are read from MLflow again; so is anything a reconciliation would repair.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from conforto.fileio import atomic_write_json
from conforto.lifecycle.audit import production_history
from conforto.lifecycle.journal import FileJournal
from conforto.lifecycle.pointer import read_pointer
from conforto.tracking.mlflow_store import registry_stamp
from conforto.tracking.model_version import ModelVersion

if TYPE_CHECKING:
    from conforto.settings import Settings

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
    """
    index = version_index(settings)
    found = index.read() if index is not None else None
    if found is None:
        return None
    journal = FileJournal(settings.registry_dir)
    if journal.interrupted() is not None:
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
