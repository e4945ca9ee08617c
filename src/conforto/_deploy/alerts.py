"""Cloud Monitoring's watch over a Cloud Run service: its alert policies, as files.

Each ``deploy/cloudrun/alerts/*.yaml`` is an ``AlertPolicy`` (Cloud Monitoring's own format)
with ``$service``, ``$environment`` and ``$channel`` to fill in: p95 latency, 5xx answers,
instance count and memory. Every deploy applies them after its rollout: a policy whose display
name exists is updated, another created, so that the files stay the truth. ``$channel`` is the
notification channel the alerts go to (a Slack channel of Cloud Monitoring, made once).
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from conforto._deploy.cloudrun import checked
from conforto._fileio import atomic_write_text
from conforto.errors import ConfigError

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable
    from pathlib import Path


@dataclass(frozen=True)
class Policy:
    """One alert policy of a service, rendered."""

    display_name: str
    body: dict[str, Any]


def render_policies(
    folder: Path, *, service: str, environment: str, channel: str | None
) -> list[Policy]:
    """The alert policies of ``folder``, filled in for ``service``.

    Raises
    ------
    ConfigError
        When a file has another placeholder, is not YAML, or names no ``displayName``.
    """
    policies = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            text = string.Template(path.read_text()).substitute(
                service=service, environment=environment, channel=channel or ""
            )
            body = yaml.safe_load(text)
        except (KeyError, ValueError, yaml.YAMLError) as exc:
            raise ConfigError(
                f"{path}: not an alert policy ({type(exc).__name__}: {exc}); the files take "
                "$service, $environment and $channel."
            ) from None
        if not isinstance(body, dict) or not body.get("displayName"):
            raise ConfigError(f"{path}: an alert policy needs a displayName.")
        policies.append(Policy(str(body["displayName"]), body))
    return policies


def apply_policies(
    gcloud: Callable[..., subprocess.CompletedProcess[str]],
    policies: list[Policy],
    *,
    project: str,
    folder: Path,
) -> list[str]:
    """Create or update each policy in ``project`` (its file written to ``folder`` first); what
    was done, a line each.

    Raises
    ------
    ConfortoError
        When ``gcloud`` fails, with its message.
    """
    scope = ["--project", project, "--quiet"]

    def policies_call(*args: str) -> str:
        return checked(
            gcloud,
            ["monitoring", "policies", *args, *scope],
            f"`gcloud monitoring policies {args[0]}`",
        )

    done = []
    for number, policy in enumerate(policies):
        path = folder / f"policy-{number}.yaml"
        atomic_write_text(path, yaml.safe_dump(policy.body, sort_keys=False))
        query = f'displayName="{policy.display_name}"'
        existing = json.loads(policies_call("list", "--filter", query, "--format", "json") or "[]")
        if existing:
            name = str(existing[0]["name"])
            policies_call("update", name, "--policy-from-file", str(path))
            done.append(f"alert policy updated: {policy.display_name}")
        else:
            policies_call("create", "--policy-from-file", str(path))
            done.append(f"alert policy created: {policy.display_name}")
    return done
