"""A fake `gcloud` for the Cloud Run tests: records every call, keeps the services' revisions
and traffic in a state file, answers `describe` with URLs of a real local service, and fails a
subcommand on demand.

FAKE_GCLOUD_DIR  folder of calls.jsonl and state.json
FAKE_GCLOUD_URL  what `describe` gives as the service's (and the candidate's) URL, once
                 `add-iam-policy-binding` made allUsers an invoker; before, a URL under it that
                 answers 404, as Cloud Run refuses (403) callers who are not invokers
FAKE_GCLOUD_FAIL `<subcommand>:<n>` fails the n-th call of that subcommand (exit 1)
FAKE_GCLOUD_MEANWHILE a command run once, before the first `replace`: what happens elsewhere
                 between an image's build and its deploy (a promotion, in the rehearsal); its
                 output in meanwhile.log, its exit code in the state's `meanwhile`
FAKE_GCLOUD_DIR/cloud.json what exists in Google Cloud (:func:`tests.fakes.describe_cloud`):
                 the project, its service accounts and its secrets (name → value). Like Cloud
                 Run, the fake refuses a call without `--region` and `--project`, another
                 project, and a manifest whose fields Cloud Run's service schema does not have,
                 whose location label is not the region, whose revision is not named after the
                 service, or that names a service account or a secret that does not exist;
                 and `monitoring policies` list, create and update the project's alert
                 policies, refusing fields Cloud Monitoring's AlertPolicy does not have, a
                 notification channel the project lacks (`channels`) or an unknown service
FAKE_GCLOUD_PODMAN a first port: each revision then runs for real, its manifest's image pulled
                 and run under podman on the next port (label conforto-rehearsal, whose value
                 is FAKE_GCLOUD_DIR: each cloud removes its own), and `describe` gives the URLs
                 of the revisions that serve (the workflow rehearsal), its secrets' values
                 in the revision's environment
"""

import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

#: Cloud Run's service manifest (Knative serving.knative.dev/v1, as Cloud Run takes it): the
#: fields of each object, by its path; ``*`` a map of any keys (labels, annotations, limits).
SCHEMA: dict[str, set[str]] = {
    "": {"apiVersion", "kind", "metadata", "spec"},
    "metadata": {"name", "namespace", "labels", "annotations"},
    "metadata.labels": {"*"},
    "metadata.annotations": {"*"},
    "spec": {"template", "traffic"},
    "spec.traffic[]": {"revisionName", "percent", "tag", "latestRevision"},
    "spec.template": {"metadata", "spec"},
    "spec.template.metadata": {"name", "labels", "annotations"},
    "spec.template.metadata.labels": {"*"},
    "spec.template.metadata.annotations": {"*"},
    "spec.template.spec": {
        "containerConcurrency",
        "timeoutSeconds",
        "serviceAccountName",
        "containers",
        "volumes",
    },
    "spec.template.spec.containers[]": {
        "name",
        "image",
        "command",
        "args",
        "env",
        "ports",
        "resources",
        "volumeMounts",
        "workingDir",
        "startupProbe",
        "livenessProbe",
    },
    "spec.template.spec.containers[].env[]": {"name", "value", "valueFrom"},
    "spec.template.spec.containers[].env[].valueFrom": {"secretKeyRef"},
    "spec.template.spec.containers[].env[].valueFrom.secretKeyRef": {"name", "key"},
    "spec.template.spec.containers[].ports[]": {"name", "containerPort"},
    "spec.template.spec.containers[].resources": {"limits"},
    "spec.template.spec.containers[].resources.limits": {"*"},
    **{
        f"spec.template.spec.containers[].{probe}": {
            "httpGet",
            "tcpSocket",
            "grpc",
            "initialDelaySeconds",
            "periodSeconds",
            "timeoutSeconds",
            "failureThreshold",
        }
        for probe in ("startupProbe", "livenessProbe")
    },
    **{
        f"spec.template.spec.containers[].{probe}.httpGet": {"path", "port", "httpHeaders"}
        for probe in ("startupProbe", "livenessProbe")
    },
}


def unknown_fields(node: object, path: str = "", schema: dict[str, set[str]] = SCHEMA) -> list[str]:
    """The fields of ``node`` (a manifest, or the object at ``path`` in one) that ``schema``
    (Cloud Run's by default) does not have, as dotted paths."""
    if isinstance(node, list):
        return [f for item in node for f in unknown_fields(item, f"{path}[]", schema)]
    if not isinstance(node, dict) or path not in schema or "*" in schema[path]:
        return []
    found: list[str] = []
    for key, value in node.items():
        inner = f"{path}.{key}" if path else key
        found += [inner] if key not in schema[path] else unknown_fields(value, inner, schema)
    return found


#: Cloud Monitoring's AlertPolicy (the fields of each object, by its path).
ALERT_POLICY: dict[str, set[str]] = {
    "": {
        "displayName",
        "documentation",
        "userLabels",
        "conditions",
        "combiner",
        "enabled",
        "notificationChannels",
        "alertStrategy",
        "severity",
    },
    "documentation": {"content", "mimeType", "subject"},
    "userLabels": {"*"},
    "conditions[]": {"displayName", "conditionThreshold", "conditionAbsent"},
    "conditions[].conditionThreshold": {
        "filter",
        "aggregations",
        "comparison",
        "thresholdValue",
        "duration",
        "trigger",
        "evaluationMissingData",
    },
    "conditions[].conditionThreshold.aggregations[]": {
        "alignmentPeriod",
        "perSeriesAligner",
        "crossSeriesReducer",
        "groupByFields",
    },
    "conditions[].conditionThreshold.trigger": {"count", "percent"},
    "alertStrategy": {"autoClose", "notificationRateLimit"},
}


def policy_refusal(policy: dict, cloud: dict, services: dict) -> str | None:
    """Why Cloud Monitoring would refuse the alert ``policy``, or ``None``; a policy watching
    a Cloud Run service that does not exist is refused too (it would never fire)."""
    if unknown := unknown_fields(policy, schema=ALERT_POLICY):
        return f"unknown fields: {', '.join(unknown)}"
    if not policy.get("displayName") or not policy.get("conditions"):
        return "an alert policy needs a displayName and conditions"
    for channel in policy.get("notificationChannels", []):
        if channel not in cloud.get("channels", []):
            return f"notification channel {channel} does not exist"
    for condition in policy["conditions"]:
        threshold = condition.get("conditionThreshold", {})
        if not str(threshold.get("comparison", "")).startswith("COMPARISON_"):
            return f"condition {condition.get('displayName')}: no comparison"
        if not re.fullmatch(r"\d+s", str(threshold.get("duration", ""))):
            return f"condition {condition.get('displayName')}: duration must be like 300s"
        watched = re.search(r'resource\.labels\.service_name = "([^"]+)"', threshold["filter"])
        if watched is None or watched[1] not in services:
            return f"condition {condition.get('displayName')} watches no existing service"
    return None


def monitoring(args: list[str], state: dict, cloud: dict) -> None:
    """Answer `gcloud monitoring policies list|create|update` on the fake's policies."""
    verb = args[2]
    project(args, cloud, f"monitoring.policies.{verb}")
    policies = state.setdefault("policies", {})
    if verb == "list":
        wanted = args[args.index("--filter") + 1].removeprefix('displayName="').rstrip('"')
        found = [{"name": n, **p} for n, p in policies.items() if p["displayName"] == wanted]
        print(json.dumps(found))
        return
    policy = yaml.safe_load(Path(args[args.index("--policy-from-file") + 1]).read_text())
    if refused := policy_refusal(policy, cloud, state.get("services", {})):
        sys.exit(f"ERROR: (gcloud.monitoring.policies.{verb}) INVALID_ARGUMENT: {refused}")
    if verb == "create":
        name = f"projects/{cloud['project']}/alertPolicies/{len(policies) + 1}"
    elif verb == "update" and args[3] in policies:
        name = args[3]
    else:
        sys.exit(f"ERROR: (gcloud.monitoring.policies.{verb}) NOT_FOUND: {args[3:4]}")
    policies[name] = policy
    print(f"{verb}d alert policy [{name}].")


def refusal(manifest: dict, region: str, cloud: dict) -> str | None:
    """Why Cloud Run would refuse ``manifest`` in ``region`` of ``cloud``, or ``None``."""
    if manifest.get("apiVersion") != "serving.knative.dev/v1" or manifest.get("kind") != "Service":
        return "the manifest is not a serving.knative.dev/v1 Service"
    if unknown := unknown_fields(manifest):
        return f"unknown fields: {', '.join(unknown)}"
    name = manifest["metadata"]["name"]
    location = manifest["metadata"].get("labels", {}).get("cloud.googleapis.com/location")
    if location not in (None, region):
        return f"the manifest's location {location} is not the region {region}"
    revision = manifest["spec"]["template"]["metadata"].get("name", f"{name}-")
    if not revision.startswith(f"{name}-") or len(revision) > 63:
        return f"revision {revision} must start with '{name}-' and have at most 63 characters"
    spec = manifest["spec"]["template"]["spec"]
    account = spec.get("serviceAccountName")
    if account is not None and account not in cloud["service_accounts"]:
        return f"service account {account} does not exist"
    for container in spec["containers"]:
        for variable in container.get("env", []):
            secret = variable.get("valueFrom", {}).get("secretKeyRef", {}).get("name")
            if secret is not None and secret not in cloud["secrets"]:
                return f"secret {secret} (for {variable['name']}) not found in the project"
    return None


def project(args: list[str], cloud: dict, command: str) -> None:
    """Exit as gcloud would for a call without ``--project``, or another than ``cloud``'s."""
    if "--project" not in args:
        sys.exit(f"ERROR: (gcloud.{command}) --project is required")
    if (named := args[args.index("--project") + 1]) != cloud["project"]:
        sys.exit(
            f"ERROR: (gcloud.{command}) PERMISSION_DENIED: project {named} does not exist, "
            "or you may not use it"
        )


def scoped(args: list[str], cloud: dict) -> str:
    """The region of a `run services` call; exits as gcloud would without a region and a
    project, or with a project other than ``cloud``'s."""
    project(args, cloud, f"run.services.{args[2]}")
    if "--region" not in args:
        sys.exit(f"ERROR: (gcloud.run.services.{args[2]}) --region is required")
    return args[args.index("--region") + 1]


def main(args: list[str]) -> None:
    """Answer one gcloud call (the state kept whatever the answer)."""
    folder = Path(os.environ["FAKE_GCLOUD_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "calls.jsonl").open("a") as log:
        log.write(json.dumps(args) + "\n")
    state_file = folder / "state.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    if args[:2] == ["auth", "print-access-token"]:
        print("rehearsal-access-token")
        return
    cloud = json.loads((folder / "cloud.json").read_text())
    try:
        if args[:2] == ["monitoring", "policies"] and len(args) > 2:
            monitoring(args, state, cloud)
        else:
            run_services(args, folder, state, cloud)
    finally:
        state_file.write_text(json.dumps(state))


def run_services(args: list[str], folder: Path, state: dict, cloud: dict) -> None:
    """Answer `gcloud run services …` on the fake's services."""
    if args[:2] != ["run", "services"] or len(args) < 4:
        sys.exit(f"fake gcloud: unsupported call {args}")
    verb, target = args[2], args[3]
    region = scoped(args, cloud)
    counts = state.setdefault("counts", {})
    counts[verb] = counts.get(verb, 0) + 1
    fail = os.environ.get("FAKE_GCLOUD_FAIL", "")
    if fail == f"{verb}:{counts[verb]}":
        sys.exit(f"ERROR: (gcloud.run.services.{verb}) injected failure")
    services = state.setdefault("services", {})
    meanwhile = os.environ.get("FAKE_GCLOUD_MEANWHILE", "")
    if verb == "replace" and meanwhile and "meanwhile" not in state:
        with (folder / "meanwhile.log").open("w") as out:
            done = subprocess.run(shlex.split(meanwhile), stdout=out, stderr=out, check=False)
        state["meanwhile"] = done.returncode
    if verb == "replace":
        manifest = yaml.safe_load(Path(target).read_text())
        if refused := refusal(manifest, region, cloud):
            sys.exit(f"ERROR: (gcloud.run.services.replace) INVALID_ARGUMENT: {refused}")
        name = manifest["metadata"]["name"]
        service = services.setdefault(name, {"revisions": []})
        service["revisions"].append(manifest["spec"]["template"]["metadata"]["name"])
        service["traffic"] = manifest["spec"]["traffic"]
        if os.environ.get("FAKE_GCLOUD_PODMAN"):
            port = int(os.environ["FAKE_GCLOUD_PODMAN"]) + len(state.setdefault("urls", {}))
            state["urls"][service["revisions"][-1]] = run_revision(manifest, port, cloud)
        print(f"Service [{name}] revision [{service['revisions'][-1]}] deployed.")
    elif verb == "add-iam-policy-binding":
        member, role = args[args.index("--member") + 1], args[args.index("--role") + 1]
        services[target].setdefault("invokers", []).append(member)
        print(f"Updated IAM policy for service [{target}]: {member} {role}.")
    elif verb == "describe":
        if target not in services:
            sys.exit(f"ERROR: (gcloud.run.services.describe) Cannot find service [{target}]")
        service = services[target]
        urls = state.get("urls", {})
        refused = "" if "allUsers" in service.get("invokers", []) else "/refused-by-cloud-run"
        base = os.environ.get("FAKE_GCLOUD_URL", "")
        url = urls.get(serving_revision(service), base) + refused
        traffic = [
            {**t, "url": urls.get(t["revisionName"], base) + refused} if t.get("tag") else t
            for t in service["traffic"]
        ]
        status = {
            "url": url,
            "latestReadyRevisionName": service["revisions"][-1],
            "traffic": traffic,
        }
        print(json.dumps({"metadata": {"name": target}, "status": status}))
    elif verb == "update-traffic":
        revision, percent = args[args.index("--to-revisions") + 1].split("=")
        service = services[target]
        share = int(percent)
        serving = [
            t["revisionName"]
            for t in service["traffic"]
            if t.get("percent") and t.get("revisionName") not in (None, revision)
        ]
        rest = (
            [{"revisionName": serving[0], "percent": 100 - share}]
            if serving and share < 100
            else []
        )
        service["traffic"] = [{"revisionName": revision, "percent": share}, *rest]
        print(f"Traffic: {service['traffic']}")


def serving_revision(service: dict) -> str:
    """The revision with the largest share of the service's traffic."""
    best = max(service["traffic"], key=lambda t: t.get("percent", 0))
    return best["revisionName"] if "revisionName" in best else service["revisions"][-1]


def run_revision(manifest: dict, port: int, cloud: dict) -> str:
    """Pull the manifest's image and run it on ``port`` as Cloud Run would (its variables, the
    secrets' from ``cloud``, PORT); its URL once /ready answers."""
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    env = [
        f"{e['name']}={e['value'] if 'value' in e else cloud['secrets'][secret(e)]}"
        for e in container.get("env", [])
    ]
    podman = ["podman", "--storage-driver=overlay", "--runtime", "runc"]
    label = f"conforto-rehearsal={os.environ['FAKE_GCLOUD_DIR']}"
    run = [*podman, "run", "--detach", "--network", "host", "--label", label]
    run += ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
    run += ["--env", f"PORT={port}"]
    run += [f"--env={e}" for e in env]
    pulled = subprocess.run(
        [*podman, "pull", "--quiet", "--tls-verify=false", container["image"]],
        capture_output=True,
        text=True,
        check=False,
    )
    if pulled.returncode:
        sys.exit(f"ERROR: (gcloud.run.services.replace) image not pulled: {pulled.stderr}")
    started = subprocess.run(
        [*run, container["image"]], capture_output=True, text=True, check=False
    )
    if started.returncode:
        sys.exit(f"ERROR: (gcloud.run.services.replace) revision not started: {started.stderr}")
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=1):
                return url
        except OSError:
            time.sleep(0.1)
    sys.exit("ERROR: (gcloud.run.services.replace) the revision never became ready")


def secret(variable: dict) -> str:
    """The name of the secret a variable of a manifest takes its value from."""
    return variable["valueFrom"]["secretKeyRef"]["name"]


if __name__ == "__main__":
    main(sys.argv[1:])
