"""A fake `gcloud` for the Cloud Run tests: records every call, keeps the services' revisions
and traffic in a state file, answers `describe` with URLs of a real local service, and fails a
subcommand on demand.

FAKE_GCLOUD_DIR  folder of calls.jsonl and state.json
FAKE_GCLOUD_URL  what `describe` gives as the service's (and the candidate's) URL, once
                 `add-iam-policy-binding` made allUsers an invoker; before, a URL under it that
                 answers 404, as Cloud Run refuses (403) callers who are not invokers
FAKE_GCLOUD_FAIL `<subcommand>:<n>` fails the n-th call of that subcommand (exit 1)
FAKE_GCLOUD_PODMAN a first port: each revision then runs for real, its manifest's image pulled
                 and run under podman on the next port (label conforto-rehearsal, whose value
                 is FAKE_GCLOUD_DIR: each cloud removes its own), and `describe` gives the URLs
                 of the revisions that serve (the workflow rehearsal)
"""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml


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
    counts = state.setdefault("counts", {})
    counts[verb] = counts.get(verb, 0) + 1
    fail = os.environ.get("FAKE_GCLOUD_FAIL", "")
    if fail == f"{verb}:{counts[verb]}":
        state_file.write_text(json.dumps(state))
        sys.exit(f"ERROR: (gcloud.run.services.{verb}) injected failure")
    services = state.setdefault("services", {})
    if verb == "replace":
        manifest = yaml.safe_load(Path(target).read_text())
        name = manifest["metadata"]["name"]
        service = services.setdefault(name, {"revisions": []})
        service["revisions"].append(manifest["spec"]["template"]["metadata"]["name"])
        service["traffic"] = manifest["spec"]["traffic"]
        if os.environ.get("FAKE_GCLOUD_PODMAN"):
            port = int(os.environ["FAKE_GCLOUD_PODMAN"]) + len(state.setdefault("urls", {}))
            state["urls"][service["revisions"][-1]] = run_revision(manifest, port)
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


def run_revision(manifest: dict, port: int) -> str:
    """Pull the manifest's image and run it on ``port`` as Cloud Run would (its literal
    variables, PORT); its URL once /ready answers."""
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    env = [f"{e['name']}={e['value']}" for e in container.get("env", []) if "value" in e]
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


if __name__ == "__main__":
    main(sys.argv[1:])
