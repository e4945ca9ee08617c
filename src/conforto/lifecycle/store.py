"""What the lifecycle needs from a model registry: the store protocol every backend implements.

:class:`conforto.tracking.mlflow.MlflowRegistryStore` is the one in use (a local SQLite store by
default, an MLflow server when ``CONFORTO_TRACKING__URI`` is set).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from conforto.tracking.model_version import ModelVersion


class RegistryStore(Protocol):
    """What the lifecycle needs from a model registry (MLflow's, in practice)."""

    model_name: str

    def register(
        self,
        artifact: Path,
        *,
        tags: dict[str, str],
        params: dict[str, Any],
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
