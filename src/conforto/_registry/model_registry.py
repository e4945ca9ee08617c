"""Model lifecycle on top of a registry store: register, promote, roll back, audit.

Lifecycle tags (:mod:`conforto._tracking.model_version`) follow the original design; the
``production`` alias in the registry is the source of truth.

Every move is made under the journal's lease (:mod:`conforto._registry.journal`): its intent
first, then the registry (one atomic alias update), then the audit log, then the pointer file
serving reads. The intent lets any later command complete an interrupted move
(:meth:`Registry.reconcile`). Embedded, the journal is a folder and a file lock on this machine;
with a tracking server it is kept on the server (:mod:`conforto._registry.shared_journal`), so
that every machine continues one lifecycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from conforto._lineage import config_hash, timestamp
from conforto._model.artifact import load_model
from conforto._registry.audit import Move, production_history
from conforto._registry.faults import checkpoint
from conforto._registry.journal import FileJournal, file_lock
from conforto._registry.pointer import (
    NO_PRODUCTION,
    Pointer,
    artifact_sha256,
    read_pointer,
    write_pointer,
)
from conforto._registry.registration import read_registration
from conforto._registry.store import clip_tag
from conforto._registry.version_index import indexed_version, version_index
from conforto.errors import (
    AccessRefused,
    ArtifactError,
    NoProductionModel,
    RegistryBusy,
    RegistryError,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from contextlib import AbstractContextManager
    from pathlib import Path

    from conforto._registry.journal import Journal
    from conforto._registry.store import RegistryStore
    from conforto._registry.version_index import VersionIndex
    from conforto._settings import Settings
    from conforto._tracking.model_version import ModelVersion

PRODUCTION = "production"


class Registered(NamedTuple):
    """What registering an artifact did."""

    version: ModelVersion
    #: False when nothing was registered: the earlier version is returned.
    created: bool
    #: True when that earlier version is another artifact trained on the same data, code and
    #: configuration (False: the very same artifact).
    unchanged: bool = False


def training_lineage(
    data_sha256: str, config_sha256: str, code_sha256: str | None
) -> dict[str, str]:
    """The tags that say what a version was trained on: data, configuration (its
    :func:`~conforto._lineage.config_hash`) and code.
    """
    return {
        "lineage.data_sha256": data_sha256,
        "lineage.config_hash": config_sha256,
        "lineage.code_sha256": str(code_sha256),
    }


class Resolved(NamedTuple):
    """A version and its verified local artifact."""

    version: ModelVersion
    artifact: Path


class Registry:
    """The registered model's lifecycle.

    Parameters
    ----------
    store
        The registry store (see :class:`conforto._tracking.mlflow_store.MlflowRegistryStore`).
    directory
        This machine's registry folder: the production pointer, the lock, the download cache.
    journal
        Where the audit log, the intent and the lease are kept (default: ``directory``).
    index
        The index of the versions kept for reading without the store (embedded only), rewritten
        whenever the versions are read or changed.
    """

    def __init__(
        self,
        store: RegistryStore,
        directory: Path,
        journal: Journal | None = None,
        index: VersionIndex | None = None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.journal = journal or FileJournal(directory)
        self.index = index
        directory.mkdir(parents=True, exist_ok=True)

    def versions(self) -> list[ModelVersion]:
        """Every version, oldest first (indexed again)."""
        found = self.store.versions()
        if self.index is not None:
            self.index.write(found)
        return found

    def _reindex(self) -> None:
        """Index the versions after a change (nothing to do without an index)."""
        if self.index is not None:
            self.versions()

    # ------------------------------------------------------------------ locking and the audit log

    def locked(self) -> AbstractContextManager[None]:
        """Hold this machine's registry lock (registering, tagging): never interleaved here."""
        return file_lock(self.directory)

    def audit(self) -> list[Move]:
        """Every move, oldest first."""
        return self.journal.moves()

    def history(self) -> list[str]:
        """Production versions as a stack: promotions push, rollbacks pop."""
        return production_history(self.audit())

    # ------------------------------------------------------------------------------ reconciling

    def reconcile(self) -> list[str]:
        """Bring the audit log, the tags and this machine's pointer in line with the registry's
        production alias: an interrupted move is completed (or abandoned, when the alias never
        moved). Nothing is touched while another command is moving production, nor by an
        account that may not move it (this machine's pointer still follows the alias).

        Returns
        -------
        list of str
            What was repaired, for the user to read (empty when all agreed).
        """
        if self.journal.busy() is not None:
            return []
        current = self.store.alias_version(PRODUCTION)
        history = self.history()
        repaired: list[str] = []
        agree = (history[-1] if history else None) == current
        if self.journal.interrupted() is not None or not agree or self._mistagged(current):
            try:
                with self.journal.lease():
                    current, repaired = self._repair()
            except RegistryBusy:
                return []  # another command is moving production: it will leave things right
            except AccessRefused:
                return []  # an account that may not move production (the monitoring's) reads
        if current is not None:
            pointer = read_pointer(self.directory)
            if pointer is None or pointer.version != current:
                self.refresh_pointer(self.store.get(current))
                repaired.append(f"pointer: now version {current}")
        if repaired:
            self._reindex()
        return repaired

    def _mistagged(self, current: str | None) -> bool:
        """Whether the ``production`` tags disagree with the alias (``current``)."""
        if current is None:
            return False
        return [v.version for v in self.store.versions() if PRODUCTION in v.tags] != [current]

    def _repair(self) -> tuple[str | None, list[str]]:
        """Repair the audit log and the tags (under the lease): the production version, and what
        was repaired.
        """
        repaired = self._repair_audit()
        current = self.store.alias_version(PRODUCTION)
        if current is not None:
            repaired += self._repair_tags(current)
        return current, repaired

    def _repair_audit(self) -> list[str]:
        """Record what the alias says happened, and settle an interrupted move (under the
        lease).
        """
        current = self.store.alias_version(PRODUCTION)
        intent = self.journal.interrupted()
        history = self.history()
        repaired = []
        if current is not None and (not history or history[-1] != current):
            if intent is not None and intent.to == current:
                move = intent
                move.reason = f"{move.reason} (completed after an interruption)".strip()
            else:
                previous = history[-1] if history else None
                why = "registry ahead of the audit log"
                move = Move("reconcile", current, previous, why, "reconcile")
            self.journal.record(move)
            repaired.append(f"audit log: recorded {move.action} to version {current}")
        elif intent is not None:
            repaired.append(f"audit log: {intent.describe()} stopped before production moved")
        if intent is not None:
            self.journal.settle()
        return repaired

    def _repair_tags(self, current: str) -> list[str]:
        """Tag ``current`` production and archive any other version tagged so."""
        repaired = []
        for version in self.store.versions():
            if version.version == current and PRODUCTION not in version.tags:
                self.store.set_tag(current, PRODUCTION, timestamp())
                repaired.append(f"tags: version {current} marked production")
            elif version.version != current and PRODUCTION in version.tags:
                self.store.delete_tag(version.version, PRODUCTION)
                self.store.set_tag(version.version, "archived", timestamp())
                repaired.append(f"tags: version {version.version} archived")
        return repaired

    def refresh_pointer(self, version: ModelVersion) -> Pointer:
        """Point serving at ``version``'s artifact (the pointer file, written atomically)."""
        artifact = self.store.local_artifact(version)
        pointer = Pointer(
            version.version,
            str(artifact.resolve()),
            artifact_sha256(artifact),
            self.store.model_name,
            timestamp(),
        )
        write_pointer(self.directory, pointer)
        return pointer

    # ---------------------------------------------------------------------------------- actions

    def same_training(self, lineage: dict[str, str]) -> ModelVersion | None:
        """The latest version trained on the same data, configuration and code
        (:func:`training_lineage`), rejected ones included; ``None`` when the code's
        fingerprint is unknown (a source tree without its files).
        """
        if lineage["lineage.code_sha256"] == "None":
            return None
        for version in reversed(self.store.versions()):
            if all(version.tags.get(k) == v for k, v in lineage.items()):
                return version
        return None

    def register(self, artifact: Path, *, force: bool = False) -> Registered:
        """Add an artifact as a new version tagged ``training`` with its lineage.

        Registering the same artifact again returns the existing version; so does an artifact
        trained on the same data, code and configuration as a registered version (rejected ones
        included) unless ``force``: retraining on nothing new makes nothing new.

        Returns
        -------
        Registered
            ``(version, created, unchanged)``.

        Raises
        ------
        ArtifactError
            When the artifact is incomplete or corrupt, or carries the registration record of
            another artifact (a download's, changed since).
        """
        model = load_model(artifact)  # verifies every file against the manifest
        read_registration(artifact)  # a record left by a download names this very artifact
        sha = artifact_sha256(artifact)
        with self.locked():
            for version in self.store.versions():
                if version.tags.get("artifact_sha256") == sha:
                    return Registered(version, created=False)
            manifest = model.manifest
            lineage = training_lineage(
                manifest.data.sha256, config_hash(manifest.config), manifest.lineage.code_sha256
            )
            same = None if force else self.same_training(lineage)
            if same is not None:
                return Registered(same, created=False, unchanged=True)
            metrics = manifest.metrics.model_dump()
            tags = {
                "training": timestamp(),
                "artifact_sha256": sha,
                **lineage,
                "lineage.data_rows": str(manifest.data.rows),
                "lineage.git_commit": str(manifest.lineage.git_commit),
                "lineage.package_version": manifest.lineage.conforto,
                **{f"metric.{k}": f"{v:.6f}" for k, v in metrics.items()},
            }
            params = {
                "seed": manifest.seed,
                **{f"config.{k}": v for k, v in manifest.config.items()},
            }
            found = self.store.register(artifact, tags=tags, params=params, metrics=metrics)
            self._reindex()
            return Registered(found, created=True)

    def verified(self, version: ModelVersion) -> Path:
        """The version's local artifact, checked against its registered checksum and loaded; a
        downloaded copy that fails (a crash mid-download, a changed file) is fetched again once.

        Raises
        ------
        ArtifactError
            When it is missing, does not match, or does not load.
        """
        try:
            return self._checked(version)
        except ArtifactError:
            if not self.store.discard(version):
                raise
            return self._checked(version)

    def _checked(self, version: ModelVersion) -> Path:
        artifact = self.store.local_artifact(version)
        expected = version.tags.get("artifact_sha256")
        if not (artifact / "manifest.json").is_file() or artifact_sha256(artifact) != expected:
            raise ArtifactError(
                f"version {version.version}: artifact {artifact} is missing or does not match its "
                "registered checksum; it cannot go to production."
            )
        load_model(artifact)  # every file against the manifest
        return artifact

    def _move(self, move: Move) -> ModelVersion:
        target = self.store.get(move.to)
        self.verified(target)
        self.journal.intend(move)
        checkpoint("before-alias")
        self.store.set_alias(PRODUCTION, move.to)
        checkpoint("after-alias")
        self.store.set_tag(move.to, PRODUCTION, timestamp())
        self.store.delete_tag(move.to, "archived")
        if move.previous is not None and move.previous != move.to:
            self.store.delete_tag(move.previous, PRODUCTION)
            self.store.set_tag(move.previous, "archived", timestamp())
        checkpoint("after-tags")
        self.journal.record(move)
        checkpoint("after-audit")
        self.refresh_pointer(target)
        self.journal.settle()
        self._reindex()
        return target

    def promote(
        self, version: str, *, force: bool = False, reason: str = "", command: str = "promote"
    ) -> Move | None:
        """Make ``version`` the production version.

        Returns
        -------
        Move or None
            The move made, or ``None`` when the version already is in production.

        Raises
        ------
        RegistryError
            When the version does not exist, or is not tagged ``validated`` and ``force`` is not
            set (or was ``rejected``).
        ArtifactError
            When its artifact is missing or corrupt.
        """
        with self.journal.lease():
            current, _ = self._repair()
            target = self.store.get(str(version))
            if current == target.version:
                return None
            if not force:
                if "rejected" in target.tags:
                    raise RegistryError(
                        f"version {target.version} was rejected ({target.tags['rejected']}); "
                        "pass --force to promote it anyway."
                    )
                if "validated" not in target.tags:
                    raise RegistryError(
                        f"version {target.version} is not validated: run the gate "
                        "(`conforto gate`) or pass --force."
                    )
            move = Move(
                "promote",
                target.version,
                current,
                reason or ("forced" if force else "validated"),
                command,
            )
            self._move(move)
            return move

    def rollback(self, *, reason: str = "", command: str = "rollback") -> Move:
        """Put back the version that was production before the current one (per the audit log).

        Raises
        ------
        RegistryError
            When there is no earlier production version.
        """
        with self.journal.lease():
            self._repair()
            history = self.history()
            if len(history) < 2:
                raise RegistryError(
                    "no earlier production version to roll back to "
                    f"(production history: {history or 'empty'})."
                )
            move = Move("rollback", history[-2], history[-1], reason or "rollback", command)
            self._move(move)
            return move

    def tag(self, version: str, key: str, value: str) -> None:
        """Set a tag (``validated``, ``rejected``, ``deployed-<sha>``) on a version."""
        with self.locked():
            self.store.get(version)
            self.store.set_tag(version, key, value)
            self._reindex()

    def record_gate(self, version: str, passed: bool, reason: str, report: Sequence[Path]) -> None:
        """Tag a version ``validated`` or ``rejected`` (with the reasons) after the gate, and
        keep its report with the version (``gate.report``: where ``gate.html`` is kept, a
        ``runs:/`` URI on an MLflow store, so any machine can read it).

        The opposite tag of an earlier gate run is removed, so a version carries one verdict.
        """
        keep, drop = ("validated", "rejected") if passed else ("rejected", "validated")
        value = timestamp() if passed else clip_tag(reason)
        with self.locked():
            found = self.store.get(version)
            kept = self.store.attach(found, report, "gate")
            self.store.set_tag(version, keep, value)
            self.store.delete_tag(version, drop)
            self.store.set_tag(version, "gate.report", f"{kept}/gate.html")
            self._reindex()

    def resolve(self, version: str) -> Resolved:
        """A version (or ``production``) and its verified local artifact."""
        if version == PRODUCTION:
            current = self.store.alias_version(PRODUCTION)
            if current is None:
                raise NoProductionModel(NO_PRODUCTION)
            version = current
        found = self.store.get(version)
        return Resolved(found, self.verified(found))


def open_registry(settings: Settings) -> Registry:
    """The project's registry: MLflow (embedded SQLite by default, with the journal in
    ``CONFORTO_HOME/registry``), or a tracking server holding the journal too.
    """
    from conforto._registry.shared_journal import SharedJournal
    from conforto._tracking.mlflow_store import MlflowRegistryStore

    embedded = settings.tracking.uri is None
    store = MlflowRegistryStore(
        settings.mlflow_uri,
        settings.tracking.model_name,
        registry_uri=settings.tracking.registry_uri,
        experiment=settings.tracking.experiment,
        artifact_location=settings.mlflow_artifacts if embedded else None,
        cache=settings.registry_dir / "cache",
    )
    journal = None if embedded else SharedJournal(store, settings.tracking.lease_s)
    return Registry(store, settings.registry_dir, journal, version_index(settings))


def resolve_version(settings: Settings, version: str) -> Resolved:
    """A version (or ``production``) and its verified local artifact: from the embedded
    registry's index when it is current (no MLflow imported), else from the registry.

    Raises
    ------
    NoProductionModel
        For ``production`` when no version is in production.
    RegistryError
        When the version does not exist.
    """
    found = indexed_version(settings, version)
    return Resolved(*found) if found is not None else open_registry(settings).resolve(version)
