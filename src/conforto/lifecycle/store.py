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
    ) -> ModelVersion: ...

    def versions(self) -> list[ModelVersion]: ...

    def get(self, version: str) -> ModelVersion: ...

    def set_tag(self, version: str, key: str, value: str) -> None: ...

    def delete_tag(self, version: str, key: str) -> None: ...

    def alias_version(self, alias: str) -> str | None: ...

    def set_alias(self, alias: str, version: str) -> None: ...

    def local_artifact(self, version: ModelVersion) -> Path: ...

    def add_mlflow_model(self, version: ModelVersion) -> bool: ...
