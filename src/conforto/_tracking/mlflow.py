"""MLflow behind the project's small interfaces: a :class:`Tracker` (the registry store is in
:mod:`conforto._tracking.mlflow_store`).

``mlflow`` is imported lazily (``import mlflow`` costs ~2 s, and serving never needs it).
Without a tracking URI, MLflow runs embedded: a SQLite store and an artifact folder under
``CONFORTO_HOME/mlflow``.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from conforto._tracking.base import TrackedRun
from conforto.errors import AccessRefused, TrackingError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.exceptions import MlflowException

    from conforto._tracking.base import Params


def client(tracking_uri: str, registry_uri: str | None = None) -> MlflowClient:
    """An MLflow client of the tracking (and registry) URI; an embedded store's folder made."""
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


def refusal(exc: MlflowException, uri: str) -> AccessRefused | None:
    """What to tell when the tracking server at ``uri`` refused a request for who sent it (a
    server running MLflow's ``basic-auth`` app: 401 without credentials, 403 without the
    permission); ``None`` for any other failure.
    """
    if exc.error_code == "UNAUTHENTICATED":
        return AccessRefused(
            f"the tracking server at {uri} asks who you are: set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD (the workflows pass them from the secrets of the same names)."
        )
    if exc.error_code == "PERMISSION_DENIED":
        user = os.environ.get("MLFLOW_TRACKING_USERNAME", "this user")
        return AccessRefused(
            f"the tracking server at {uri} refused {user} the permission this needs "
            f"({exc.message.splitlines()[0][:200]}): ask its admin for it, or use an account "
            "that has it."
        )
    return None


def _experiment_id(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    return str(client.create_experiment(name, artifact_location=artifact_location))


def runs_since(tracking_uri: str, experiment: str, since: datetime) -> list[TrackedRun]:
    """The runs of ``experiment`` that started at or after ``since``, newest first: the
    records every machine sharing the tracking server reads alike.

    Raises
    ------
    TrackingError
        When the tracking server cannot be read.
    """
    from mlflow.exceptions import MlflowException

    mlflow = client(tracking_uri)
    try:
        found = mlflow.get_experiment_by_name(experiment)
        if found is None:
            return []
        runs: list[Run] = []
        token = None
        while True:
            page = mlflow.search_runs(
                [found.experiment_id],
                filter_string=f"attributes.start_time >= {int(since.timestamp() * 1000)}",
                order_by=["attributes.start_time DESC"],
                max_results=1000,
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                break
    except MlflowException as exc:
        raise refusal(exc, tracking_uri) or TrackingError(
            f"the runs at {tracking_uri} could not be read ({exc.message.splitlines()[0][:300]}); "
            "run the command again once the tracking server answers."
        ) from None
    return [
        TrackedRun(
            name=run.info.run_name or "",
            status=run.info.status,
            started=datetime.fromtimestamp(run.info.start_time / 1000, UTC),
            tags=dict(run.data.tags),
        )
        for run in runs
    ]


def uri_to_path(uri: str) -> Path | None:
    """Local path of a ``file:`` URI (or a plain path); ``None`` for remote URIs."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    return None


def valid_name(name: object) -> str:
    """A metric's or parameter's name as MLflow takes it: characters other than letters,
    digits, ``_ - . : /`` and spaces become ``_`` (MLflow refuses the whole batch otherwise,
    and the run would stay open on the server).

    Examples
    --------
    >>> valid_name("site adaptation, 20-39 earlier votes")
    'site adaptation_ 20-39 earlier votes'
    """
    return re.sub(r"[^\w\-.:/ ]", "_", str(name))


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
            self._client = client(self.tracking_uri)
        return self._client

    def _run(self) -> str:
        if self.run_id is None:
            raise TrackingError("no MLflow run is open: call start_run first.")
        return self.run_id

    def start_run(self, name: str, tags: Mapping[str, str] | None = None) -> None:
        """Open a run called ``name`` in the experiment.

        Raises
        ------
        AccessRefused
            When the server refuses who asks (no outbox keeps such a call: it would fail again).
        """
        from mlflow.exceptions import MlflowException

        try:
            experiment_id = _experiment_id(self.client, self.experiment, self.artifact_location)
            run = self.client.create_run(experiment_id, run_name=name, tags=dict(tags or {}))
        except MlflowException as exc:
            raise refusal(exc, self.tracking_uri) or exc from None
        self.run_id = run.info.run_id

    def log_params(self, params: Params) -> None:
        """Record parameters (values as text, truncated to MLflow's limit; names as
        :func:`valid_name` makes them).
        """
        from mlflow.entities import Param

        items = [Param(valid_name(k), str(v)[:6000]) for k, v in params.items()]
        self.client.log_batch(self._run(), params=items)

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Record numeric results (names as :func:`valid_name` makes them)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(valid_name(k), float(v), now, 0) for k, v in metrics.items()]
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
