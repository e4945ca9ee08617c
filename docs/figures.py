"""The site's figures, made by the project's own commands on the dev data (``make docs-figures``).

Renders the production model's evaluation report again from its ``metrics.json`` (``make run``
makes one; the current plotting code draws it) and runs ``conforto monitor drift`` on the dev
data's summer votes, then writes each figure the pages show into ``docs/images/`` as a PNG.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from conforto._model.artifact import read_manifest
from conforto._registry.pointer import production_artifact
from conforto._settings import get_settings
from conforto._training.evaluate import write_evaluation
from conforto.errors import ConfortoError

IMAGES = Path(__file__).with_name("images")
#: Figure file → the heading of the report's section that holds it.
FROM_MODEL_REPORT = {
    "confusion-model-vs-pmv.png": "Confusion matrices",
    "reliability.png": "Calibration",
    "dissatisfied-vs-ppd.png": "Occupant responses",
    "adaptation-learning-curve.png": "Site adaptation",
}


def figures(html: str) -> dict[str, bytes]:
    """Each section heading of a report and the first PNG figure under it."""
    found: dict[str, bytes] = {}
    heading = None
    for title, data in re.findall(
        r'<h[23][^>]*>([^<]*)</h[23]>|src="data:image/png;base64,([^"]+)"', html
    ):
        if title:
            heading = title.strip()
        elif heading is not None and heading not in found:
            found[heading] = base64.b64decode(data)
    return found


def summer_drift(folder: Path) -> bytes:
    """The drift report's figure: the dev data's summer votes against the training sample."""
    settings = get_settings()
    if settings.measurements is None or settings.metadata is None:
        sys.exit("set CONFORTO_MEASUREMENTS and CONFORTO_METADATA (the dev data) first")
    rows = pd.read_csv(settings.measurements, low_memory=False)
    summer = folder / "summer.csv"
    rows[rows["season"] == "summer"].to_csv(summer, index=False)
    command = [sys.executable, "-m", "conforto", "monitor", "drift", "--input", str(summer)]
    command += ["--metadata", str(settings.metadata), "--out", str(folder)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # noqa: S603 - our command
    (figure,) = figures((folder / "drift.html").read_text()).values()
    return figure


def main() -> None:
    """Write every figure into ``docs/images``."""
    try:
        _, model = production_artifact(get_settings().registry_dir)
    except ConfortoError as exc:
        sys.exit(f"{exc} (`make run` makes one)")
    with tempfile.TemporaryDirectory() as tmp:
        metrics = json.loads((model / "metrics.json").read_text())
        title = "Cross-validation (grouped by building)"
        write_evaluation(metrics, Path(tmp), manifest=read_manifest(model), title=title)
        report = figures((Path(tmp) / "report.html").read_text())
        made = {name: report[heading] for name, heading in FROM_MODEL_REPORT.items()}
        made["drift-summer.png"] = summer_drift(Path(tmp))
    for name, data in made.items():
        (IMAGES / name).write_bytes(data)
        print(f"docs/images/{name}: {len(data):,} bytes")


if __name__ == "__main__":
    main()
