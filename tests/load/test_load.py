"""Bounded load (wrk) and schema fuzzing (schemathesis) against a live service.

Both run against ``conforto serve`` on 127.0.0.1, a few seconds each, with a token configured
so the admin route is fuzzed too. Neither may see a single server error.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

OBS = {"ta": 24.5, "rh": 55.0, "vel": 0.15, "met": 1.1, "clo": 0.6, "season": "summer"}


@pytest.fixture(scope="module")
def live(trained_model: Path, tmp_path_factory: pytest.TempPathFactory):
    from tests.processes import Server

    server = Server(
        ["--model", str(trained_model)],
        {
            "CONFORTO_HOME": str(tmp_path_factory.mktemp("load-home")),
            "CONFORTO_SERVE__ADMIN_TOKEN": "fuzz-token",
            "CONFORTO_SERVE__MAX_BATCH": "20",
        },
    )
    server.wait_healthy()
    yield server
    server.stop()


def _predictions_served(url: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "conforto_predictions_total"
    )


def test_bounded_load_has_no_errors(live: Any, tmp_path: Path) -> None:
    wrk = shutil.which("wrk")
    assert wrk is not None, "wrk is not installed: apt-get install wrk (.ci/run does)"
    script = tmp_path / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = '{json.dumps(OBS)}'\n"
    )
    before = _predictions_served(live.url)
    done = subprocess.run(
        [wrk, "-t2", "-c16", "-d3s", "--timeout", "5s", "-s", str(script), f"{live.url}/predict"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    match = re.search(r"(\d+) requests in", done.stdout)
    assert match, done.stdout
    requests = int(match.group(1))
    assert requests > 100, done.stdout
    assert "Non-2xx or 3xx responses" not in done.stdout, done.stdout
    assert "Socket errors" not in done.stdout, done.stdout
    assert _predictions_served(live.url) - before >= requests  # every answer was a prediction


def test_schemathesis_finds_no_server_error(live: Any) -> None:
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{live.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "40",
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-database",
            "none",
            "--seed",
            "1",
            "--header",
            "Authorization: Bearer fuzz-token",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    tested = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", done.stdout)
    assert tested, done.stdout[-2000:]
    assert tested.group(3) == tested.group(2)  # every operation in the schema
    cases = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert cases, done.stdout[-2000:]
    assert int(cases.group(1)) > 200
    assert cases.group(1) == cases.group(2)
