"""Deploying to Cloud Run: the Knative manifest, ``gcloud``, a gradual split and rollback.

The service's manifest (``deploy/cloudrun/<env>.yaml``) names the new revision and keeps all
traffic on the revision serving now, the new one tagged ``candidate`` (its own URL, no traffic).
Then: smoke test on the candidate's URL; with ``canary`` a share of the traffic to it and a
smoke test on the service's URL; then all of it and a last smoke test. A failed step puts the
traffic back on the previous revision and stops there. ``dry_run`` prints the manifest and the
exact commands (placeholders named as such: ``PROJECT_ID``, ``IMAGE@sha256:DIGEST``,
``PREVIOUS_REVISION``) and runs nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import string
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict

import yaml

from conforto._fileio import atomic_write_text
from conforto._settings import GCP_PROJECT, GCP_REGION
from conforto.errors import ConfigError, ConfortoError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from conforto._deploy.smoke import SmokeResult

#: The role that lets a member call a Cloud Run service.
INVOKER_ROLE = "roles/run.invoker"
DIGEST = re.compile(r"^[\w./:-]+@sha256:[0-9a-f]{64}$")
#: Cloud Run's annotation: "false" keeps the CPU allocated between requests.
CPU_THROTTLING = "run.googleapis.com/cpu-throttling"
#: A revision's settings for the challenger baked into its image (the Dockerfile's /challenger).
SHADOW_ENV = {
    "CONFORTO_SERVE__CHALLENGER__MODEL": "/challenger",
    "CONFORTO_SERVE__CHALLENGER__MODE": "shadow",
}


class TrafficTarget(TypedDict, total=False):
    """One traffic target of a Cloud Run service (the names are Cloud Run's)."""

    revisionName: str
    percent: int
    tag: str
    latestRevision: bool
    url: str


class ServiceStatus(TypedDict, total=False):
    """A Cloud Run service's status (the part this module reads)."""

    url: str
    latestReadyRevisionName: str
    traffic: list[TrafficTarget]


class DescribedService(TypedDict, total=False):
    """A Cloud Run service as ``gcloud`` describes it (the part this module reads)."""

    status: ServiceStatus


@dataclass
class Plan:
    """What a Cloud Run deploy does: its manifest and its commands, in order."""

    environment: str
    service: str
    revision: str
    manifest: dict[str, Any]
    steps: list[tuple[str, list[str]]] = field(default_factory=list)

    def manifest_text(self) -> str:
        """The manifest, as ``gcloud run services replace`` reads it."""
        return yaml.safe_dump(self.manifest, sort_keys=False)

    def text(self) -> str:
        """The manifest and the commands, as --dry-run prints them."""
        lines = [f"# {self.environment}: manifest of {self.service}", self.manifest_text()]
        lines += [f"# {why}\n{' '.join(command)}" for why, command in self.steps]
        return "\n".join(lines)


class Gcloud:
    """``gcloud`` from PATH; every call's exit code decides."""

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``gcloud *args``; its output and exit code."""
        binary = shutil.which("gcloud")
        if binary is None:
            raise ConfigError("gcloud not found: install the Google Cloud SDK (or use --dry-run).")
        return subprocess.run(  # noqa: S603 - gcloud with arguments this module builds
            [binary, *args], capture_output=True, text=True, check=False, timeout=900
        )


def checked(
    gcloud: Callable[..., subprocess.CompletedProcess[str]], args: Sequence[str], what: str
) -> str:
    """``gcloud *args``'s output; :class:`ConfortoError` naming ``what`` failed, with the end of
    gcloud's message, when it exits non-zero.
    """
    done = gcloud(*args)
    if done.returncode != 0:
        raise ConfortoError(f"{what} failed: {done.stderr.strip()[-300:]}")
    return str(done.stdout)


def revision_name(environment: str, version: str, image: str) -> str:
    """The new revision's name: environment, model version and the image digest's start.

    Examples
    --------
    >>> revision_name("staging", "3", "europe-docker.pkg.dev/p/r/conforto@sha256:" + "ab" * 32)
    'conforto-staging-v3-ababababab'
    """
    digest = image.rsplit("@sha256:", 1)[-1] if "@sha256:" in image else "digest"
    return f"conforto-{environment}-v{version}-{digest[:10]}".lower()


def render(
    template: Path,
    *,
    image: str,
    revision: str,
    project: str,
    region: str,
    previous: str | None,
) -> dict[str, Any]:
    """The service manifest: the template filled in, and the traffic kept on ``previous``."""
    try:
        text = string.Template(template.read_text()).substitute(
            image=image, revision=revision, project=project, region=region
        )
    except (KeyError, ValueError) as exc:
        raise ConfigError(
            f"{template}: unknown placeholder {exc}; the manifests take $image, $revision, "
            "$project and $region."
        ) from None
    manifest: dict[str, Any] = yaml.safe_load(text)
    traffic: list[TrafficTarget]
    if previous is None:
        traffic = [{"latestRevision": True, "percent": 100}]
    else:
        traffic = [
            {"revisionName": previous, "percent": 100},
            {"revisionName": revision, "percent": 0, "tag": "candidate"},
        ]
    manifest["spec"]["traffic"] = traffic
    return manifest


def with_shadow(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest of a revision whose image has a challenger baked in: every instance runs it
    as a shadow (its configuration names it), with the CPU kept after each response, when the
    shadow scores (Cloud Run throttles it otherwise).
    """
    template = manifest["spec"]["template"]
    template["metadata"].setdefault("annotations", {})[CPU_THROTTLING] = "false"
    container = template["spec"]["containers"][0]
    container.setdefault("env", []).extend(
        {"name": name, "value": value} for name, value in SHADOW_ENV.items()
    )
    return manifest


def _scope(region: str, project: str) -> list[str]:
    return ["--region", region, "--project", project, "--quiet"]


def plan(
    environment: str,
    templates: Path,
    *,
    image: str,
    version: str,
    project: str,
    region: str,
    previous: str | None,
    canary: int | None,
    manifest_path: Path,
    invoker: str = "",
    shadow: bool = False,
) -> Plan:
    """The manifest and the commands of a deploy (see the module docstring); ``invoker``, when
    given, is granted ``roles/run.invoker`` on the service (``allUsers``: a public API);
    ``shadow``: the image has a challenger baked in, which the revision runs (:func:`with_shadow`).
    """
    template = templates / f"{environment}.yaml"
    if not template.is_file():
        raise ConfigError(f"no Cloud Run manifest for {environment}: {template} is missing.")
    revision = revision_name(environment, version, image)
    manifest = render(
        template, image=image, revision=revision, project=project, region=region, previous=previous
    )
    if shadow:
        manifest = with_shadow(manifest)
    service = str(manifest["metadata"]["name"])
    scope = _scope(region, project)
    run = ["gcloud", "run", "services"]
    steps = [("the new revision, no traffic yet", [*run, "replace", str(manifest_path), *scope])]
    if invoker:
        grant = ["--member", invoker, "--role", INVOKER_ROLE]
        steps.append(("who may call it", [*run, "add-iam-policy-binding", service, *scope, *grant]))
    steps.append(("its URL", [*run, "describe", service, *scope, "--format", "json"]))
    shift = [*run, "update-traffic", service, *scope, "--to-revisions"]
    if previous is not None and canary:
        steps.append((f"canary: {canary} % of the traffic", [*shift, f"{revision}={canary}"]))
    if previous is not None:
        steps.append(("all of the traffic", [*shift, f"{revision}=100"]))
    return Plan(environment, service, revision, manifest, steps)


def serving_revision(described: DescribedService) -> str | None:
    """The revision taking all the traffic of a described service."""
    status = described.get("status", ServiceStatus())
    for entry in status.get("traffic", []):
        if entry.get("percent") == 100:
            if entry.get("latestRevision"):
                return str(status.get("latestReadyRevisionName"))
            return str(entry["revisionName"])
    return None


def urls(described: DescribedService) -> tuple[str, str | None]:
    """The service's URL and the candidate revision's (when tagged)."""
    status = described.get("status", ServiceStatus())
    tagged = [e.get("url") for e in status.get("traffic", []) if e.get("tag") == "candidate"]
    return str(status.get("url")), (str(tagged[0]) if tagged and tagged[0] else None)


@dataclass
class CloudRunDeploy:
    """Runs a :class:`Plan` with ``gcloud``, smoke-testing between steps."""

    gcloud: Callable[..., subprocess.CompletedProcess[str]]
    smoke: Callable[[str], SmokeResult]
    region: str
    project: str

    def describe(self, service: str) -> DescribedService | None:
        """The service as Cloud Run describes it, or ``None`` when it does not exist yet."""
        scope = _scope(self.region, self.project)
        done = self.gcloud("run", "services", "describe", service, *scope, "--format", "json")
        if done.returncode != 0:
            return None
        found: DescribedService = json.loads(done.stdout)
        return found

    def _step(self, why: str, command: list[str]) -> None:
        checked(self.gcloud, command[1:], f"{why}: `{' '.join(command)}`")

    def _back(self, service: str, previous: str | None) -> str:
        if previous is None:
            return "nothing served before: no traffic to put back"
        scope = _scope(self.region, self.project)
        shift = ["gcloud", "run", "services", "update-traffic", service, *scope]
        shift += ["--to-revisions", f"{previous}=100"]
        self._step("rollback", shift)
        return f"traffic back on {previous}"

    def _smoke(self, url: str, what: str) -> str | None:
        result = self.smoke(url)
        return None if result.passed else f"smoke test on {what} failed: {result.reason}"

    def run(self, deploy: Plan, previous: str | None) -> tuple[bool, str]:
        """Run the plan; ``(True, summary)``, or ``(False, reason)`` after putting the traffic
        back on ``previous`` (nothing to put back when the new revision never got any).
        """
        before = [s for s in deploy.steps if s[1][3] in ("replace", "add-iam-policy-binding")]
        shifts = [s for s in deploy.steps if s[1][3] == "update-traffic"]
        try:
            for why, command in before:
                self._step(why, command)
        except ConfortoError as exc:
            return False, f"{exc}; the traffic never moved"
        try:
            service_url, candidate_url = urls(self.describe(deploy.service) or DescribedService())
            failure = self._smoke(candidate_url or service_url, "the candidate revision")
            for why, command in shifts:
                if failure is not None:
                    break
                self._step(why, command)
                failure = self._smoke(service_url, why)
        except ConfortoError as exc:
            failure = str(exc)
        if failure is None:
            return True, f"{deploy.revision} serves {deploy.service} at {service_url}"
        return False, f"{failure}; {self._back(deploy.service, previous)}"


def check_target(image: str | None, project: str | None, region: str) -> tuple[str, str]:
    """The image and project of a deploy, checked before any call to Google Cloud.

    Parameters
    ----------
    image
        The image by digest (``REGISTRY/conforto@sha256:<64 hex digits>``).
    project, region
        The Google Cloud project ID and region.

    Returns
    -------
    tuple of str
        ``(image, project)``, known to be set.

    Raises
    ------
    ConfigError
        When the image is not named by digest, or the project or region is malformed or
        missing, saying which and how to fix it.
    """
    if image is None or not DIGEST.match(image):
        raise ConfigError(
            f"--image must name the image by digest (…@sha256:<64 hex>), not {image!r}."
        )
    if project is None:
        raise ConfigError("no project: pass --project or set CONFORTO_DEPLOY__GCP_PROJECT.")
    if not re.match(GCP_PROJECT, project):
        raise ConfigError(
            f"--project {project!r} is not a Google Cloud project ID (6-30 of a-z, 0-9, -)."
        )
    if not re.match(GCP_REGION, region):
        raise ConfigError(f"--region {region!r} is not a Google Cloud region (e.g. europe-west1).")
    return image, project


class Rollout(NamedTuple):
    """A deploy as it went."""

    plan: Plan
    #: The revision serving before, if any.
    previous: str | None
    succeeded: bool
    #: Where it serves, or why it failed and where the traffic went back.
    summary: str


def roll_out(
    runner: CloudRunDeploy,
    environment: str,
    manifests: Path,
    target: Path,
    *,
    image: str,
    version: str,
    canary: int | None,
    invoker: str = "",
    shadow: bool = False,
) -> Rollout:
    """Plan a deploy against what serves now, write its manifest to ``target`` and run it."""
    previous = serving_revision(runner.describe(f"conforto-{environment}") or DescribedService())
    steps = plan(
        environment,
        manifests,
        image=image,
        version=version,
        project=runner.project,
        region=runner.region,
        previous=previous,
        canary=canary,
        manifest_path=target,
        invoker=invoker,
        shadow=shadow,
    )
    atomic_write_text(target, steps.manifest_text())
    ok, summary = runner.run(steps, previous)
    return Rollout(steps, previous, ok, summary)
