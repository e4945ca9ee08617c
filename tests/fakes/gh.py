"""A fake `gh` for the workflow rehearsal: GitHub's servers cannot run here, so every call is
recorded in FAKE_GH_DIR/calls.jsonl (the tests start the workflow a `gh workflow run` asks for)
and `release create` keeps the files it would attach in FAKE_GH_DIR/releases/<tag>."""

import json
import os
import shutil
import sys
from pathlib import Path


def main(args: list[str]) -> None:
    """Answer one gh call."""
    folder = Path(os.environ["FAKE_GH_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("GH_TOKEN"):
        sys.exit("gh: GH_TOKEN is not set (the workflow must pass github.token)")
    with (folder / "calls.jsonl").open("a") as log:
        log.write(json.dumps(args) + "\n")
    if args[:2] == ["workflow", "run"] and "--ref" in args:
        print(f"✓ Created workflow_dispatch event for {args[2]} at {args[args.index('--ref') + 1]}")
    elif args[:2] == ["release", "create"]:
        kept = folder / "releases" / args[2]
        kept.mkdir(parents=True)
        for name in args[3:]:
            if Path(name).is_file():
                shutil.copy(name, kept)
        print(f"https://github.com/rehearsal/conforto/releases/tag/{args[2]}")
    else:
        sys.exit(f"fake gh: unsupported call {args}")


if __name__ == "__main__":
    main(sys.argv[1:])
