"""A registered model version, as every registry store describes it, and what its tags mean.

Lifecycle tags follow the original design: ``training`` → ``validated`` → ``production``; the
previous production version becomes ``archived``; ``rejected`` carries the gate's reasons;
deploys add ``deployed-<sha>``. Registration adds ``metric.<name>`` and ``lineage.<name>`` tags,
decoded here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

#: Lifecycle tags, in lifecycle order.
LIFECYCLE = ("training", "validated", "production", "archived", "rejected")
#: Prefix of the tag a deploy adds, followed by the git commit deployed.
DEPLOYED = "deployed-"


def lifecycle_tags(tags: dict[str, str]) -> list[str]:
    """The lifecycle tags among ``tags``, in lifecycle order, then the deploys.

    Examples
    --------
    >>> lifecycle_tags({"deployed-ab12": "", "metric.f1": "0.5", "validated": "", "training": ""})
    ['training', 'validated', 'deployed-ab12']
    """
    found = [t for t in LIFECYCLE if t in tags]
    return found + sorted(t for t in tags if t.startswith(DEPLOYED))


def _prefixed(tags: dict[str, str], prefix: str) -> dict[str, str]:
    return {k.removeprefix(prefix): v for k, v in tags.items() if k.startswith(prefix)}


@dataclass
class ModelVersion:
    """One registered version.

    Attributes
    ----------
    version
        The registry's version number, as text.
    tags
        Every tag (lifecycle, ``metric.*``, ``lineage.*``, ``artifact_sha256``, …).
    aliases
        Aliases pointing at it (``production``).
    created
        Registration time [s since the epoch].
    run_id, source
        The registration run and the artifact's URI in the store.
    artifact
        Local folder of the artifact, when the store is local.
    """

    version: str
    tags: dict[str, str]
    aliases: list[str]
    created: float
    run_id: str | None
    source: str
    artifact: Path | None = None

    @property
    def lifecycle(self) -> list[str]:
        """Its lifecycle tags (see :func:`lifecycle_tags`)."""
        return lifecycle_tags(self.tags)

    @property
    def judged(self) -> bool:
        """A gate gave its verdict (``validated`` or ``rejected``), or it went to production:
        False for a version whose training run died before its validation.
        """
        return any(t in self.tags for t in ("validated", "rejected", "production", "archived"))

    @property
    def metrics(self) -> dict[str, float]:
        """The cross-validated metrics recorded at registration (``metric.*`` tags)."""
        return {k: float(v) for k, v in _prefixed(self.tags, "metric.").items()}

    @property
    def lineage(self) -> dict[str, str]:
        """Where it comes from: data and code fingerprints, git commit (``lineage.*`` tags)."""
        return _prefixed(self.tags, "lineage.")

    def record(self) -> dict[str, Any]:
        """A JSON-ready summary: version, lifecycle tags, aliases, metrics, lineage, artifact,
        the gate's reasons for a rejection and where its report is kept.
        """
        return {
            "version": self.version,
            "tags": self.lifecycle,
            "aliases": self.aliases,
            "created": datetime.fromtimestamp(self.created, UTC).isoformat(timespec="seconds"),
            "metrics": self.metrics,
            "artifact": str(self.artifact) if self.artifact else self.source,
            "lineage": self.lineage,
            "rejected": self.tags.get("rejected"),
            "gate_report": self.tags.get("gate.report"),
        }
