"""Bringing the versions registered by earlier releases up to this one (``conforto model
upgrade``): artifact format 2, an MLflow Model beside each artifact, every step audited.

An interrupted upgrade is completed by running it again: a manifest rewritten whose new checksum
was not yet recorded is recognised by its format-1 checksum
(:func:`conforto._model.artifact.format_1_sha256`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conforto._model.artifact import (
    MANIFEST,
    PREVIOUS_FORMAT,
    format_1_sha256,
    upgrade_format,
)
from conforto._model.manifest import FORMAT_VERSION
from conforto._registry.audit import Move
from conforto._registry.faults import checkpoint
from conforto._registry.model_registry import PRODUCTION
from conforto._registry.pointer import artifact_sha256

if TYPE_CHECKING:
    from collections.abc import Sequence

    from conforto._registry.model_registry import Registry
    from conforto._tracking.model_version import ModelVersion


def upgrade(
    registry: Registry, versions: Sequence[str] = (), *, command: str = "upgrade"
) -> list[str]:
    """Bring versions registered by earlier releases up to this one; audited.

    A format-1 artifact is rewritten as format 2
    (:func:`conforto._model.artifact.upgrade_format`: its manifest, every other file as it
    was) and its registered checksum updated; a
    version registered before MLflow Models were written gets one (``MLmodel``, signature,
    environment). The production pointer follows its version.

    Parameters
    ----------
    registry
        The registry.
    versions
        Version numbers; every version when empty.
    command
        The command, for the audit log.

    Returns
    -------
    list of str
        The versions upgraded (those already up to date are left alone).

    Raises
    ------
    RegistryError
        When a version does not exist.
    ArtifactError
        When a version's artifact is missing, does not match its checksum, or lacks a file
        format 2 requires (it must be retrained).
    """
    with registry.journal.lease():
        targets = [registry.store.get(v) for v in versions] or registry.store.versions()
        current = registry.store.alias_version(PRODUCTION)
        upgraded = []
        for target in targets:
            done = _upgrade(registry, target)
            if done:
                move = Move("upgrade", target.version, None, "; ".join(done), command)
                registry.journal.record(move)
                upgraded.append(target.version)
            if target.version == current and done:
                registry.refresh_pointer(registry.store.get(target.version))
        return upgraded


def _upgrade(registry: Registry, version: ModelVersion) -> list[str]:
    """What upgrading one version did (nothing: an empty list)."""
    artifact = registry.store.local_artifact(version)
    registered = version.tags.get("artifact_sha256")
    if artifact_sha256(artifact) != registered and format_1_sha256(artifact) != registered:
        registry.verified(version)  # says what is wrong
    done = []
    if upgrade_format(artifact):
        done.append(f"artifact format {PREVIOUS_FORMAT} → {FORMAT_VERSION}")
    if artifact_sha256(artifact) != registered:  # rewritten now, or before an interruption
        checkpoint("before-upgrade-checksum")
        registry.store.write_back(version, MANIFEST)
        registry.store.set_tag(version.version, "artifact_sha256", artifact_sha256(artifact))
        done = done or [f"artifact format {FORMAT_VERSION}: checksum recorded"]
    registry.verified(registry.store.get(version.version))
    if registry.store.add_mlflow_model(version):
        done.append("added the MLflow Model")
    return done
