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
                 service, or that names a service account or a secret that does not exist
FAKE_GCLOUD_PODMAN a first port: each revision then runs for real, its manifest's image pulled
                 and run under podman on the next port (label conforto-rehearsal, whose value
                 is FAKE_GCLOUD_DIR: each cloud removes its own), and `describe` gives the URLs
                 of the revisions that serve (the workflow rehearsal), its secrets' values
                 in the revision's environment
"""

import json
import os
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


def unknown_fields(node: object, path: str = "") -> list[str]:
    """The fields of ``node`` (a manifest, or the object at ``path`` in one) that Cloud Run's
    schema does not have, as dotted paths."""
    if isinstance(node, list):
        return [f for item in node for f in unknown_fields(item, f"{path}[]")]
    if not isinstance(node, dict) or path not in SCHEMA or "*" in SCHEMA[path]:
        return []
    found: list[str] = []
    for key, value in node.items():
        inner = f"{path}.{key}" if path else key
        found += [inner] if key not in SCHEMA[path] else unknown_fields(value, inner)
    return found


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


def scoped(args: list[str], cloud: dict) -> str:
    """The region of a `run services` call; exits as gcloud would without a region and a
    project, or with a project other than ``cloud``'s."""
    scope = {flag: args[args.index(flag) + 1] for flag in ("--region", "--project") if flag in args}
    if set(scope) != {"--region", "--project"}:
        sys.exit(f"ERROR: (gcloud.run.services.{args[2]}) --region and --project are required")
    if scope["--project"] != cloud["project"]:
        sys.exit(
            f"ERROR: (gcloud.run.services.{args[2]}) PERMISSION_DENIED: project "
            f"{scope['--project']} does not exist, or you may not use it"
        )
    return scope["--region"]


def main(args: list[str]) -> None:
    """Answer one gcloud call."""
    folder = Path(os.environ["FAKE_GCLOUD_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "calls.jsonl").open("a") as log:
        log.write(json.dumps(args) + "\n")
    state_file = folder / "state.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    if args[:2] == ["auth", "print-access-token"]:
        print("rehearsal-access-token")
        return
    if args[:2] != ["run", "services"] or len(args) < 4:
        sys.exit(f"fake gcloud: unsupported call {args}")
    verb, target = args[2], args[3]
    cloud = json.loads((folder / "cloud.json").read_text())
    region = scoped(args, cloud)
    counts = state.setdefault("counts", {})
    counts[verb] = counts.get(verb, 0) + 1
    fail = os.environ.get("FAKE_GCLOUD_FAIL", "")
    if fail == f"{verb}:{counts[verb]}":
        state_file.write_text(json.dumps(state))
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
            state_file.write_text(json.dumps(state))
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
            state_file.write_text(json.dumps(state))
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
    state_file.write_text(json.dumps(state))


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
