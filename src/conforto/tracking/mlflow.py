"""MLflow behind the project's small interfaces: a :class:`Tracker` and a registry store.

This is the only module that imports ``mlflow`` (lazily: ``import mlflow`` costs ~2 s, and
serving never needs it). Without a tracking URI, MLflow runs embedded: a SQLite store and an
artifact folder under ``CONFORTO_HOME/mlflow``.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from conforto.errors import RegistryError, TrackingError
from conforto.tracking.model_version import ModelVersion

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from mlflow import MlflowClient


def _client(tracking_uri: str, registry_uri: str | None = None) -> MlflowClient:
    try:
        import logging

        from mlflow import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
    except ImportError as exc:  # pragma: no cover - mlflow-skinny is a core dependency
        raise TrackingError(
            f"MLflow is not installed ({exc}): pip install mlflow-skinny."
        ) from None
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri, registry_uri or tracking_uri)


def _experiment_id(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    return str(client.create_experiment(name, artifact_location=artifact_location))


def uri_to_path(uri: str) -> Path | None:
    """Local path of a ``file:`` URI (or a plain path); ``None`` for remote URIs."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    return None


class MlflowTracker:
    """Record runs in MLflow: parameters, metrics, tags, artifacts.

    Parameters
    ----------
    tracking_uri
        Any MLflow tracking URI (``sqlite:///…``, ``http://…``).
    experiment
        Experiment name, created when missing.
    artifact_location
        Artifact root for a newly created experiment (embedded store only).
    """

    backend = "mlflow"

    def __init__(
        self, tracking_uri: str, experiment: str, artifact_location: str | None = None
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifact_location = artifact_location
        self.run_id: str | None = None
        self._client: MlflowClient | None = None

    @property
    def client(self) -> MlflowClient:
        """The MLflow client, created on first use."""
        if self._client is None:
            self._client = _client(self.tracking_uri)
        return self._client

    def _run(self) -> str:
        if self.run_id is None:
            raise TrackingError("no MLflow run is open: call start_run first.")
        return self.run_id

    def start_run(self, name: str, tags: Mapping[str, str] | None = None) -> None:
        """Open a run called ``name`` in the experiment."""
        experiment_id = _experiment_id(self.client, self.experiment, self.artifact_location)
        run = self.client.create_run(experiment_id, run_name=name, tags=dict(tags or {}))
        self.run_id = run.info.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record parameters (values as text, truncated to MLflow's limit)."""
        from mlflow.entities import Param

        items = [Param(str(k), str(v)[:6000]) for k, v in params.items()]
        self.client.log_batch(self._run(), params=items)

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Record numeric results."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(str(k), float(v), now, 0) for k, v in metrics.items()]
        self.client.log_batch(self._run(), metrics=items)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Attach tags to the run."""
        from mlflow.entities import RunTag

        self.client.log_batch(self._run(), tags=[RunTag(str(k), str(v)) for k, v in tags.items()])

    def log_artifact(self, path: Path) -> None:
        """Attach a file, or a folder's content under its name."""
        if path.is_dir():
            self.client.log_artifacts(self._run(), str(path), artifact_path=path.name)
        else:
            self.client.log_artifact(self._run(), str(path))

    def end_run(self, status: str = "FINISHED") -> None:
        """Close the run."""
        self.client.set_terminated(self._run(), status=status)
        self.run_id = None


class MlflowRegistryStore:
    """The MLflow model registry holding one registered model's versions.

    Parameters
    ----------
    tracking_uri, registry_uri
        MLflow URIs; the registry defaults to the tracking store.
    model_name
        The registered model.
    experiment
        Experiment of the registration runs.
    artifact_location
        Artifact root for a newly created experiment (embedded store only).
    cache
        Where artifacts of a remote store are downloaded for serving.
    """

    def __init__(
        self,
        tracking_uri: str,
        model_name: str,
        *,
        registry_uri: str | None = None,
        experiment: str = "conforto",
        artifact_location: str | None = None,
        cache: Path | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.experiment = experiment
        self.artifact_location = artifact_location
        self.cache = cache
        self.client = _client(tracking_uri, registry_uri)

    def _ensure_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException:
            self.client.create_registered_model(
                self.model_name, description="Thermal sensation (cool / neutral / warm) classifier."
            )

    def register(
        self,
        artifact: Path,
        *,
        tags: Mapping[str, str],
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
    ) -> ModelVersion:
        """Log ``artifact`` in a run and add it to the registry as a new version."""
        tracker = MlflowTracker(self.tracking_uri, self.experiment, self.artifact_location)
        tracker._client = self.client
        tracker.start_run("model_registration", {"stage": "registry"})
        assert tracker.run_id is not None  # noqa: S101 - set by start_run
        run_id = tracker.run_id
        try:
            tracker.log_params(params)
            tracker.log_metrics(metrics)
            tracker.set_tags(tags)
            self.client.log_artifacts(run_id, str(artifact), artifact_path="model")
            self._log_mlflow_model(run_id)
            tracker.end_run()
        except Exception:  # whatever failed, the run is closed as FAILED and the error goes on
            tracker.end_run("FAILED")
            raise
        self._ensure_model()
        created = self.client.create_model_version(
            self.model_name, source=f"runs:/{run_id}/model", run_id=run_id, tags=dict(tags)
        )
        return self.get(str(created.version))

    def _log_mlflow_model(self, run_id: str) -> None:
        """Add the MLflow Model files to the run's ``model``; ``MLmodel`` last, so that a folder
        with an ``MLmodel`` is a complete MLflow Model.
        """
        import tempfile

        from conforto.tracking.mlflow_model import MLMODEL, write_mlflow_model

        with tempfile.TemporaryDirectory(prefix="conforto-mlmodel-") as tmp:
            files = write_mlflow_model(Path(tmp) / "model", run_id=run_id)
            mlmodel = (files / MLMODEL).rename(Path(tmp) / MLMODEL)
            self.client.log_artifacts(run_id, str(files), artifact_path="model")
            self.client.log_artifact(run_id, str(mlmodel), artifact_path="model")

    def add_mlflow_model(self, version: ModelVersion) -> bool:
        """Make a version registered without one an MLflow Model; its own files stay as they are.

        Returns
        -------
        bool
            False when the version already is an MLflow Model.
        """
        from conforto.tracking.mlflow_model import MLMODEL

        if not version.run_id:
            raise RegistryError(
                f"version {version.version} has no MLflow run to add the MLflow Model to."
            )
        present = {Path(f.path).name for f in self.client.list_artifacts(version.run_id, "model")}
        if MLMODEL in present:
            return False
        self._log_mlflow_model(version.run_id)
        return True

    def write_back(self, version: ModelVersion, name: str) -> None:
        """Upload a rewritten file of the version's artifact to the run's ``model`` (a local
        store's artifact is the run's folder itself: nothing to upload).
        """
        if version.artifact is None:
            self.attach(version, [self.local_artifact(version) / name], "model")

    def discard(self, version: ModelVersion) -> bool:
        """Remove the downloaded copy of a remote store's artifact (the next use fetches it
        again); ``False`` for a local store, whose artifact is the run's folder itself.
        """
        if version.artifact is not None:
            return False
        import shutil

        shutil.rmtree(self._cached(version), ignore_errors=True)
        return True

    def attach(self, version: ModelVersion, files: Sequence[Path], folder: str) -> str:
        """Log files in the version's run under ``folder``; their ``runs:/`` URI."""
        if not version.run_id:
            raise RegistryError(f"version {version.version} has no MLflow run to keep files in.")
        for path in files:
            self.client.log_artifact(version.run_id, str(path), artifact_path=folder)
        return f"runs:/{version.run_id}/{folder}"

    def _cached(self, version: ModelVersion) -> Path:
        return (self.cache or Path(".")) / f"v{version.version}"

    def _convert(self, mv: Any) -> ModelVersion:
        version = ModelVersion(
            version=str(mv.version),
            tags=dict(mv.tags or {}),
            aliases=list(getattr(mv, "aliases", []) or []),
            created=float(mv.creation_timestamp) / 1000.0,
            run_id=mv.run_id,
            source=str(mv.source),
        )
        if mv.run_id:
            run = self.client.get_run(mv.run_id)
            version.artifact = uri_to_path(f"{run.info.artifact_uri}/model")
        return version

    def versions(self) -> list[ModelVersion]:
        """Every version, oldest first."""
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.search_model_versions(f"name='{self.model_name}'")
            aliases = self.client.get_registered_model(self.model_name).aliases if found else {}
        except MlflowException as exc:
            raise RegistryError(f"cannot read the registry at {self.tracking_uri}: {exc}") from None
        versions = sorted((self._convert(mv) for mv in found), key=lambda v: int(v.version))
        for version in versions:  # search results carry no aliases; the registered model does
            version.aliases = sorted(a for a, v in aliases.items() if str(v) == version.version)
        return versions

    def get(self, version: str) -> ModelVersion:
        """One version; :class:`RegistryError` when it does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return self._convert(self.client.get_model_version(self.model_name, str(version)))
        except MlflowException:
            raise RegistryError(
                f"version {version!r} of {self.model_name} does not exist: "
                "see `conforto model list`."
            ) from None

    def set_tag(self, version: str, key: str, value: str) -> None:
        """Set a tag on a version."""
        self.client.set_model_version_tag(self.model_name, version, key, value)

    def delete_tag(self, version: str, key: str) -> None:
        """Remove a tag from a version (no error when absent)."""
        from mlflow.exceptions import MlflowException

        with contextlib.suppress(MlflowException):
            self.client.delete_model_version_tag(self.model_name, version, key)

    def alias_version(self, alias: str) -> str | None:
        """The version an alias points at, or ``None`` (no such alias, or no such model yet).

        Raises
        ------
        RegistryError
            When the registry cannot be read (a tracking server that does not answer): an
            unreachable server is not an empty registry.
        """
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.model_name, alias).version)
        except MlflowException as exc:
            if exc.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"):
                return None
            raise RegistryError(
                f"cannot read the registry at {self.tracking_uri}: {exc.message}"
            ) from None

    def set_alias(self, alias: str, version: str) -> None:
        """Point ``alias`` at ``version`` (one atomic update in the store)."""
        self.client.set_registered_model_alias(self.model_name, alias, version)

    def local_artifact(self, version: ModelVersion) -> Path:
        """A local folder holding the version's artifact (downloaded when the store is remote)."""
        if version.artifact is not None:  # a local store: the folder itself, present or not
            return version.artifact
        import mlflow.artifacts

        target = self._cached(version)
        if not (target / "model").is_dir():
            mlflow.artifacts.download_artifacts(
                run_id=version.run_id,
                artifact_path="model",
                dst_path=str(target),
                tracking_uri=self.tracking_uri,
            )
        return target / "model"
