"""MLflow's model registry behind the lifecycle's store protocol
(:class:`conforto._registry.store.RegistryStore`, which the lifecycle reaches through).

Every MLflow failure that is not an answer the store expects (a version that does not exist, a
record that exists) becomes a :class:`RegistryError` naming the server: an unreachable or
failing server is one line for the user, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from conforto._tracking.mlflow import MlflowTracker, client, refusal, uri_to_path
from conforto._tracking.model_version import ModelVersion
from conforto.errors import RegistryError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from conforto._tracking.base import Params

#: Description of the registered models that hold the lifecycle's journal.
RECORD = "conforto's lifecycle journal: a lease and the moves made under it (not a model)."

P = ParamSpec("P")
T = TypeVar("T")


def answered(method: Callable[P, T]) -> Callable[P, T]:
    """Turn an MLflow failure the method does not handle into a :class:`RegistryError`."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        from mlflow.exceptions import MlflowException

        try:
            return method(*args, **kwargs)
        except MlflowException as exc:
            uri = getattr(args[0], "tracking_uri", "")
            raise refusal(exc, uri) or RegistryError(
                f"the registry at {uri} failed ({exc.message.splitlines()[0][:300]}); "
                "see `conforto model audit` once it answers, and run the command again."
            ) from None

    return call


#: What MLflow's SQL store holds of a registered model's versions, tags and aliases.
REGISTRY_QUERIES = (
    "SELECT * FROM model_versions WHERE name = ?",
    "SELECT * FROM model_version_tags WHERE name = ?",
    "SELECT * FROM registered_model_aliases WHERE name = ?",
)


def registry_stamp(tracking_uri: str, model_name: str) -> str | None:
    """A digest of everything an embedded (SQLite) store holds of ``model_name``'s versions,
    read without importing MLflow: it changes whenever a version, a tag or an alias does.

    Parameters
    ----------
    tracking_uri
        The store's URI; only ``sqlite:///`` stores have a stamp.
    model_name
        The registered model.

    Returns
    -------
    str or None
        The hex digest; ``None`` for another store, or one that cannot be read (missing, or of
        a schema without these tables).
    """
    if not tracking_uri.startswith("sqlite:///"):
        return None
    path = Path(tracking_uri.removeprefix("sqlite:///"))
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            for query in REGISTRY_QUERIES:
                rows = db.execute(query, (model_name,)).fetchall()
                digest.update(f"{query}{sorted(map(repr, rows))}".encode())
    except sqlite3.Error:
        return None
    return digest.hexdigest()


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
        self.client = client(tracking_uri, registry_uri)

    def _ensure_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException:
            self.client.create_registered_model(
                self.model_name, description="Thermal sensation (cool / neutral / warm) classifier."
            )

    @answered
    def register(
        self,
        artifact: Path,
        *,
        tags: Mapping[str, str],
        params: Params,
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

        from conforto._tracking.mlflow_model import MLMODEL, write_mlflow_model

        with tempfile.TemporaryDirectory(prefix="conforto-mlmodel-") as tmp:
            files = write_mlflow_model(Path(tmp) / "model", run_id=run_id)
            mlmodel = (files / MLMODEL).rename(Path(tmp) / MLMODEL)
            self.client.log_artifacts(run_id, str(files), artifact_path="model")
            self.client.log_artifact(run_id, str(mlmodel), artifact_path="model")

    @answered
    def add_mlflow_model(self, version: ModelVersion) -> bool:
        """Make a version registered without one an MLflow Model; its own files stay as they are.

        Returns
        -------
        bool
            False when the version already is an MLflow Model.
        """
        from conforto._tracking.mlflow_model import MLMODEL

        if not version.run_id:
            raise RegistryError(
                f"version {version.version} has no MLflow run to add the MLflow Model to."
            )
        present = {Path(f.path).name for f in self.client.list_artifacts(version.run_id, "model")}
        if MLMODEL in present:
            return False
        self._log_mlflow_model(version.run_id)
        return True

    @answered
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

    @answered
    def attach(self, version: ModelVersion, files: Sequence[Path], folder: str) -> str:
        """Log files in the version's run under ``folder``; their ``runs:/`` URI."""
        if not version.run_id:
            raise RegistryError(f"version {version.version} has no MLflow run to keep files in.")
        for path in files:
            self.client.log_artifact(version.run_id, str(path), artifact_path=folder)
        return f"runs:/{version.run_id}/{folder}"

    @answered
    def create_record(self, name: str, tags: Mapping[str, str]) -> bool:
        """Create a registered model ``name`` with tags (atomic on the server); ``False`` when it
        exists.
        """
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(name, tags=dict(tags), description=RECORD)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_ALREADY_EXISTS":
                return False
            raise
        return True

    @answered
    def records(self, prefix: str) -> dict[str, dict[str, str]]:
        """The tags of every registered model whose name starts with ``prefix``, by name."""
        found: dict[str, dict[str, str]] = {}
        token = None
        while True:
            page = self.client.search_registered_models(
                f"name LIKE '{prefix}%'", max_results=1000, page_token=token
            )
            found |= {m.name: dict(m.tags) for m in page if m.name.startswith(prefix)}
            if not (token := page.token):
                return found

    @answered
    def set_record_tag(self, name: str, key: str, value: str) -> None:
        """Set one tag of the registered model ``name``."""
        self.client.set_registered_model_tag(name, key, value)

    @answered
    def set_model_tag(self, key: str, value: str) -> None:
        """Set one tag of the registered model (EDIT on it, on a locked server)."""
        self.client.set_registered_model_tag(self.model_name, key, value)

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

    @answered
    def versions(self) -> list[ModelVersion]:
        """Every version, oldest first."""
        found = self.client.search_model_versions(f"name='{self.model_name}'")
        aliases = self.client.get_registered_model(self.model_name).aliases if found else {}
        versions = sorted((self._convert(mv) for mv in found), key=lambda v: int(v.version))
        for version in versions:  # search results carry no aliases; the registered model does
            version.aliases = sorted(a for a, v in aliases.items() if str(v) == version.version)
        return versions

    @answered
    def get(self, version: str) -> ModelVersion:
        """One version; :class:`RegistryError` when it does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return self._convert(self.client.get_model_version(self.model_name, str(version)))
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
            raise RegistryError(
                f"version {version!r} of {self.model_name} does not exist: "
                "see `conforto model list`."
            ) from None

    @answered
    def set_tag(self, version: str, key: str, value: str) -> None:
        """Set a tag on a version."""
        self.client.set_model_version_tag(self.model_name, version, key, value)

    @answered
    def delete_tag(self, version: str, key: str) -> None:
        """Remove a tag from a version (no error when absent)."""
        self.client.delete_model_version_tag(self.model_name, version, key)

    @answered
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
            if exc.error_code == "PERMISSION_DENIED" and not self._model_exists():
                return None  # a locked server refuses to look for an alias of no model
            raise

    def _model_exists(self) -> bool:
        """Whether the registered model exists (as far as this account may see)."""
        found = self.client.search_registered_models(f"name = '{self.model_name}'")
        return any(m.name == self.model_name for m in found)

    @answered
    def set_alias(self, alias: str, version: str) -> None:
        """Point ``alias`` at ``version`` (one atomic update in the store)."""
        self.client.set_registered_model_alias(self.model_name, alias, version)

    @answered
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
