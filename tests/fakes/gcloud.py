"""A fake `gcloud` for the Cloud Run tests: records every call, keeps the services' revisions
and traffic in a state file, answers `describe` with URLs of a real local service, and fails a
subcommand on demand.

FAKE_GCLOUD_DIR  folder of calls.jsonl and state.json
FAKE_GCLOUD_URL  what `describe` gives as the service's (and the candidate's) URL, once
                 `add-iam-policy-binding` made allUsers an invoker; before, a URL under it that
                 answers 404, as Cloud Run refuses (403) callers who are not invokers
FAKE_GCLOUD_FAIL `<subcommand>:<n>` fails the n-th call of that subcommand (exit 1)
"""

import json
import os
import sys
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
    if args[:2] != ["run", "services"] or len(args) < 4:
        sys.exit(f"fake gcloud: unsupported call {args}")
    verb, target = args[2], args[3]
    counts = state.setdefault("counts", {})
    counts[verb] = counts.get(verb, 0) + 1
    fail = os.environ.get("FAKE_GCLOUD_FAIL", "")
    if fail == f"{verb}:{counts[verb]}":
        state_file.write_text(json.dumps(state))
        sys.exit(f"ERROR: (gcloud.run.services.{verb}) injected failure")
    url = os.environ["FAKE_GCLOUD_URL"]
    services = state.setdefault("services", {})
    if verb == "replace":
        manifest = yaml.safe_load(Path(target).read_text())
        name = manifest["metadata"]["name"]
        service = services.setdefault(name, {"revisions": []})
        service["revisions"].append(manifest["spec"]["template"]["metadata"]["name"])
        service["traffic"] = manifest["spec"]["traffic"]
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
        if "allUsers" not in service.get("invokers", []):
            url = f"{url}/refused-by-cloud-run"
        traffic = [{**t, "url": url} if t.get("tag") else t for t in service["traffic"]]
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


if __name__ == "__main__":
    main(sys.argv[1:])
