"""What the lifecycle needs from a model registry: the store protocol, and a store in memory.

:class:`conforto._tracking.mlflow_store.MlflowRegistryStore` is the one in use (a local SQLite
store by default, an MLflow server when ``CONFORTO_TRACKING__URI`` is set); :class:`MemoryStore`
keeps versions in memory, for the fast tests.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from conforto._tracking.model_version import ModelVersion
from conforto.errors import RegistryError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from conforto._tracking.base import Params

#: Longest tag value written (MLflow allows 5,000 characters on model-version tags).
MAX_TAG = 1000


def clip_tag(text: str) -> str:
    """``text`` cut to :data:`MAX_TAG` characters, an ellipsis marking the cut."""
    return text if len(text) <= MAX_TAG else text[: MAX_TAG - 1] + "…"


class RegistryStore(Protocol):
    """What the lifecycle needs from a model registry (MLflow's, in practice)."""

    model_name: str

    def register(
        self,
        artifact: Path,
        *,
        tags: dict[str, str],
        params: Params,
        metrics: dict[str, float],
    ) -> ModelVersion:
        """Add ``artifact`` as a new version with its tags, parameters and metrics."""

    def versions(self) -> list[ModelVersion]:
        """Every version, oldest first."""

    def get(self, version: str) -> ModelVersion:
        """One version."""

    def set_tag(self, version: str, key: str, value: str) -> None:
        """Set one tag of a version."""

    def delete_tag(self, version: str, key: str) -> None:
        """Remove one tag of a version."""

    def alias_version(self, alias: str) -> str | None:
        """The version an alias points to, if any."""

    def set_alias(self, alias: str, version: str) -> None:
        """Point an alias at a version (atomically)."""

    def local_artifact(self, version: ModelVersion) -> Path:
        """A local folder holding the version's artifact."""

    def add_mlflow_model(self, version: ModelVersion) -> bool:
        """Make an older version an MLflow Model; ``False`` when it already was one."""

    def write_back(self, version: ModelVersion, name: str) -> None:
        """Store a file of the version's local artifact, rewritten, as the version's own."""

    def discard(self, version: ModelVersion) -> bool:
        """Forget a downloaded copy of the version's artifact; ``False`` when there is none to
        fetch again (the artifact is local).
        """

    def attach(self, version: ModelVersion, files: Sequence[Path], folder: str) -> str:
        """Keep files with the version, under ``folder``; where they are kept (a URI)."""

    def create_record(self, name: str, tags: dict[str, str]) -> bool:
        """Create a named record with tags, atomically; ``False`` when the name exists."""

    def records(self, prefix: str) -> dict[str, dict[str, str]]:
        """Every record whose name starts with ``prefix``: its tags, by name."""

    def set_record_tag(self, name: str, key: str, value: str) -> None:
        """Set one tag of a record."""

    def set_model_tag(self, key: str, value: str) -> None:
        """Set one tag of the registered model itself: a write that only an account that may
        move its versions can make (on a locked server).
        """


class MemoryStore:
    """A registry store held in memory: the protocol's plainest implementation.

    Versions point at the folders registered (nothing is copied) and nothing outlives the
    process; the lifecycle's own logic (promotion, rollback, reconciliation after an
    interruption) runs on it exactly as on MLflow's store, so the fast tests use it.
    """

    def __init__(self, model_name: str = "conforto-thermal-sensation") -> None:
        self.model_name = model_name
        self._versions: dict[str, ModelVersion] = {}
        self._aliases: dict[str, str] = {}
        self._records: dict[str, dict[str, str]] = {}
        self.model_tags: dict[str, str] = {}

    def register(
        self,
        artifact: Path,
        *,
        tags: dict[str, str],
        params: Params,  # noqa: ARG002 - MLflow's store records them in a run
        metrics: dict[str, float],  # noqa: ARG002 - as the params
    ) -> ModelVersion:
        """Add ``artifact`` as the next version, with its tags."""
        number = str(len(self._versions) + 1)
        self._versions[number] = ModelVersion(
            number, dict(tags), [], time.time(), None, str(artifact), artifact
        )
        return self.get(number)

    def versions(self) -> list[ModelVersion]:
        """Every version, oldest first."""
        return [self.get(number) for number in self._versions]

    def get(self, version: str) -> ModelVersion:
        """A copy of one version; :class:`RegistryError` when it does not exist."""
        if version not in self._versions:
            raise RegistryError(f"version {version!r} of {self.model_name} does not exist.")
        found = replace(self._versions[version], tags=dict(self._versions[version].tags))
        found.aliases = sorted(a for a, v in self._aliases.items() if v == version)
        return found

    def set_tag(self, version: str, key: str, value: str) -> None:
        """Set one tag of a version."""
        self._versions[version].tags[key] = value

    def delete_tag(self, version: str, key: str) -> None:
        """Remove one tag of a version (no error when absent)."""
        self._versions[version].tags.pop(key, None)

    def alias_version(self, alias: str) -> str | None:
        """The version an alias points to, if any."""
        return self._aliases.get(alias)

    def set_alias(self, alias: str, version: str) -> None:
        """Point an alias at a version."""
        self._aliases[alias] = version

    def local_artifact(self, version: ModelVersion) -> Path:
        """The folder registered."""
        return Path(version.source)

    def add_mlflow_model(self, version: ModelVersion) -> bool:  # noqa: ARG002 - no MLflow here
        """Nothing to add: a memory store holds no MLflow Models."""
        return False

    def write_back(self, version: ModelVersion, name: str) -> None:
        """Nothing to store: the local artifact is the version's own folder."""

    def discard(self, version: ModelVersion) -> bool:  # noqa: ARG002 - nothing downloaded
        """Nothing to fetch again: the local artifact is the version's own folder."""
        return False

    def attach(
        self,
        version: ModelVersion,  # noqa: ARG002 - nothing to store them in
        files: Sequence[Path],
        folder: str,  # noqa: ARG002
    ) -> str:
        """The files' own folder: a memory store keeps nothing."""
        return str(Path(files[0]).parent)

    def create_record(self, name: str, tags: dict[str, str]) -> bool:
        """Create a named record; ``False`` when the name exists."""
        if name in self._records:
            return False
        self._records[name] = dict(tags)
        return True

    def records(self, prefix: str) -> dict[str, dict[str, str]]:
        """Copies of the records whose names start with ``prefix``."""
        return {n: dict(t) for n, t in self._records.items() if n.startswith(prefix)}

    def set_record_tag(self, name: str, key: str, value: str) -> None:
        """Set one tag of a record."""
        self._records[name][key] = value

    def set_model_tag(self, key: str, value: str) -> None:
        """Set one tag of the registered model."""
        self.model_tags[key] = value
