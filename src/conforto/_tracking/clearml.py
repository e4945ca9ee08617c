"""ClearML behind the :class:`~conforto._tracking.Tracker` protocol, online or offline.

Each stage is a ClearML task in its own sub-project of ``conforto_termico`` (``data_validation``,
``model_training``, ``model_validation``, ``model_promotion``, ``deployment``,
``image_build``). Server and credentials come from the standard ``CLEARML_*`` variables.
Without a reachable server the tracker runs in ClearML's offline mode: every task becomes a
session zip under ``CLEARML_CACHE_DIR/offline``, with its parameters, metrics, tags and
artifacts (the model as an artifact: ClearML cannot register models offline).
:func:`import_offline_sessions` sends the sessions and registers the models, with their
lifecycle tags, once a server answers.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conforto._tracking.model_version import LIFECYCLE
from conforto.errors import TrackingError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from conforto._tracking.base import Param, Params

log = logging.getLogger(__name__)

STAGE_PROJECTS = (
    "data_validation",
    "model_training",
    "model_validation",
    "model_promotion",
    "deployment",
    "image_build",
)
#: Marks a session zip already sent, holding the id of the task it became.
IMPORTED = ".imported"


def server_reachable(timeout: float = 2.0) -> bool:
    """True when ``CLEARML_API_HOST`` is set and an HTTP server answers there."""
    host = os.environ.get("CLEARML_API_HOST", "").strip()
    if not host.startswith(("http://", "https://")):
        return False
    try:  # the scheme is http(s): checked above
        with urllib.request.urlopen(f"{host.rstrip('/')}/debug.ping", timeout=timeout):  # noqa: S310  # nosec B310
            return True
    except urllib.error.HTTPError:
        return True  # it answered: a server is there
    except (OSError, ValueError):
        return False


def offline_requested() -> bool:
    """True when ``CLEARML_OFFLINE_MODE`` asks for offline mode."""
    return os.environ.get("CLEARML_OFFLINE_MODE", "").strip().lower() in ("1", "true", "yes", "on")


def _quiet_task_class() -> Any:
    from clearml import Task

    # ClearML reports from a subprocess by default; closing a task then waits 6-11 s for it.
    # Stages run one after the other in one process, so in-process reporting is what we want.
    Task._report_subprocess_enabled = False  # type: ignore[assignment]
    return Task


def _tag_list(tags: Mapping[str, str]) -> list[str]:
    return [k if k in LIFECYCLE or not v else f"{k}={v}" for k, v in tags.items()]


class ClearmlTracker:
    """Record stages as ClearML tasks.

    Parameters
    ----------
    project
        Parent project; each run goes to ``project/<run name>``.
    offline
        Force offline (True) or online (False) mode; default: offline when
        ``CLEARML_OFFLINE_MODE`` is set or no server answers at ``CLEARML_API_HOST``.
    """

    backend = "clearml"

    def __init__(self, project: str = "conforto_termico", offline: bool | None = None) -> None:
        self.project = project
        self.offline = (
            (offline_requested() or not server_reachable()) if offline is None else offline
        )
        self._task: Any = None
        self._params: dict[str, Param] = {}

    @property
    def task(self) -> Any:
        """The open task."""
        if self._task is None:
            raise TrackingError("no ClearML task is open: call start_run first.")
        return self._task

    @property
    def session(self) -> Path | None:
        """The open task's offline session folder (``None`` online)."""
        return Path(self.task.get_offline_mode_folder()) if self.offline else None

    def start_run(self, name: str, tags: Mapping[str, str] | None = None) -> None:
        """Open a task in ``project/name`` (``project/other`` for names that are not stages)."""
        task_class = _quiet_task_class()
        task_class.set_offline(self.offline)
        stage = name if name in STAGE_PROJECTS else "other"
        self._params = {}
        self._task = task_class.init(
            project_name=f"{self.project}/{stage}",
            task_name=name,
            reuse_last_task_id=False,
            auto_connect_frameworks=False,
            auto_connect_arg_parser=False,
            auto_resource_monitoring=False,
            auto_connect_streams=False,
        )
        if tags:
            self.set_tags(tags)

    def log_params(self, params: Params) -> None:
        """Add hyperparameters (section ``General``)."""
        self._params.update(
            {
                k: v if v is None or isinstance(v, (int, float, str, bool, list)) else str(v)
                for k, v in params.items()
            }
        )
        self.task.set_parameters_as_dict({"General": self._params})

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Report single-value metrics."""
        logger = self.task.get_logger()
        for key, value in metrics.items():
            logger.report_single_value(key, float(value))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Add tags: lifecycle names bare, the rest as ``key=value``."""
        self.task.add_tags(_tag_list(tags))

    def log_artifact(self, path: Path) -> None:
        """Attach a file, or a folder (zipped); a model directory is named ``model``."""
        name = "model" if (path / "manifest.json").is_file() else path.name
        self.task.upload_artifact(name, artifact_object=path, wait_on_upload=True)
        if not self.offline and name == "model":
            from clearml import OutputModel

            OutputModel(
                task=self.task,
                name=f"{self.project} thermal sensation",
                framework="LightGBM",
                tags=["training"],
            ).update_weights_package(weights_path=str(path))

    def end_run(self, status: str = "FINISHED") -> None:
        """Close the task; a failed run is tagged ``failed``."""
        if status != "FINISHED":
            self.task.add_tags(["failed"])
        self.task.close()
        self._task = None


def _session_manifest(session: Path) -> dict[str, Any]:
    with zipfile.ZipFile(session) as archive:
        return dict(json.loads(archive.read("task.json")))


def pending_sessions(cache_dir: Path) -> list[Path]:
    """Offline session zips under ``cache_dir/offline`` not imported yet, oldest first."""
    folder = cache_dir / "offline"
    zips = [z for z in folder.glob("*.zip") if not z.with_suffix(IMPORTED).exists()]
    return sorted(zips, key=lambda z: z.stat().st_mtime)


def import_offline_sessions(
    cache_dir: Path, lifecycle: Callable[[str], list[str]] | None = None
) -> list[tuple[Path, str]]:
    """Send offline sessions to the ClearML server and register their models.

    Parameters
    ----------
    cache_dir
        ``CLEARML_CACHE_DIR`` of the offline runs.
    lifecycle
        Lifecycle tags of a model, given the ``artifact_sha256`` its training task recorded (the
        registry's current tags: ``validated``, ``production`` …); default: ``["training"]``.

    Returns
    -------
    list
        ``(session zip, new task id)`` of every session imported. Imported sessions are marked
        and skipped next time; a failure stops the import and leaves the rest pending.

    Raises
    ------
    TrackingError
        When no server is configured or it refuses the sessions.
    """
    pending = pending_sessions(cache_dir)
    if not pending:
        return []
    if offline_requested() or not server_reachable():
        raise TrackingError(
            f"no ClearML server answers at CLEARML_API_HOST="
            f"{os.environ.get('CLEARML_API_HOST') or '(unset)'} (or CLEARML_OFFLINE_MODE is set); "
            f"{len(pending)} sessions stay in {cache_dir / 'offline'} until one does."
        )
    task_class = _quiet_task_class()
    task_class.set_offline(False)
    done: list[tuple[Path, str]] = []
    for session in pending:
        manifest = _session_manifest(session)
        try:
            task_id = str(task_class.import_offline_session(str(session)))
            _register_model(task_class.get_task(task_id=task_id), session, manifest, lifecycle)
        except Exception as exc:  # the SDK raises many types; all mean "not imported"
            raise TrackingError(
                f"ClearML did not accept {session.name} ({type(exc).__name__}: {exc}); it and "
                f"{len(pending) - len(done) - 1} other sessions stay pending: run "
                "`conforto tracking import-offline` again."
            ) from None
        session.with_suffix(IMPORTED).write_text(task_id)
        done.append((session, task_id))
    return done


def _register_model(
    task: Any,
    session: Path,
    manifest: dict[str, Any],
    lifecycle: Callable[[str], list[str]] | None,
) -> None:
    """Register the session's ``model`` artifact in ClearML's model registry."""
    artifacts = manifest.get("execution", {}).get("artifacts", [])
    model = next((a for a in artifacts if a.get("key") == "model"), None)
    if model is None:
        return
    from clearml import OutputModel

    tags = dict(t.split("=", 1) for t in manifest.get("tags", []) if "=" in t)
    sha = tags.get("artifact_sha256", "")
    offline_folder = str(manifest.get("offline_folder", ""))
    relative = str(model["uri"]).replace(offline_folder, "", 1).lstrip("/")
    with zipfile.ZipFile(session) as archive:
        target = session.parent / f"{session.stem}-model.zip"
        target.write_bytes(archive.read(relative))
    OutputModel(
        task=task,
        name=f"{manifest.get('project_name', 'conforto')} model",
        framework="LightGBM",
        tags=(lifecycle(sha) if lifecycle and sha else ["training"]),
    ).update_weights(weights_filename=str(target), auto_delete_file=False)
