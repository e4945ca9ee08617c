"""The gated pipeline end to end on a building-grouped sample, tracked in MLflow and ClearML.

ClearML runs offline (the real SDK, no server): each stage leaves a session zip, opened here.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from conforto._cli import app
from conforto._settings import get_settings
from tests.cli import conforto_cli
from tests.processes import in_thread

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

#: A small budget on 50 buildings: the gate's thresholds on what so few votes can show (the
#: heads' gain over PPD included) are relaxed; the gate itself is judged in test_gate.py.
CONFIG = """
train: {folds: 3, search_trials: 1, max_rounds: 150, adaptation_strengths: [5], seed: SEED}
gate: {min_gain_over_pmv: 0.0, min_head_log_loss_gain: -0.05, slice_min_rows: 2000,
       bootstrap_reps: 400}
tracking: [mlflow, clearml]
"""
STAGES = {"data_validation", "model_training", "model_validation", "model_promotion"}


def _sessions(cache: Path) -> dict[str, dict[str, object]]:
    """Every offline session's task.json (plus its files and metrics), by project."""
    found: dict[str, dict[str, object]] = {}
    for path in sorted((cache / "offline").glob("*.zip")):
        with zipfile.ZipFile(path) as archive:
            task = json.loads(archive.read("task.json"))
            task["files"] = archive.namelist()
            lines = (
                archive.read("metrics.jsonl").decode().splitlines()
                if "metrics.jsonl" in task["files"]
                else []
            )
            task["metrics"] = [m["variant"] for line in lines for m in json.loads(line)]
        found.setdefault(task["project_name"].split("/")[-1], task)
    return found


@pytest.fixture
def clearml_env(tmp_path: Path) -> dict[str, str]:
    return {
        "CLEARML_OFFLINE_MODE": "1",
        "CLEARML_CACHE_DIR": str(tmp_path / "clearml"),
        "CLEARML_API_HOST": "",
    }


def test_pipeline_reuses_unchanged_runs_and_gates_a_challenger(
    home: Path,
    small_sample_paths: tuple[Path, Path],
    tmp_path: Path,
    clearml_env: dict[str, str],
) -> None:
    config = tmp_path / "pipeline.yaml"
    data = ["--measurements", str(small_sample_paths[0]), "--metadata", str(small_sample_paths[1])]
    config.write_text(CONFIG.replace("SEED", "42"))
    first = conforto_cli("pipeline", "run", "--config", str(config), *data, env=clearml_env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "registered version 1" in first.stdout
    assert "production version: 1" in first.stdout

    sessions = _sessions(Path(clearml_env["CLEARML_CACHE_DIR"]))
    assert set(sessions) == STAGES
    training = sessions["model_training"]
    assert training["project_name"] == "conforto_termico/model_training"
    assert [a["key"] for a in training["execution"]["artifacts"]] == ["model"]  # type: ignore[index]
    assert any(f.endswith("artifacts/model/latest.zip") for f in training["files"])  # type: ignore[attr-defined]
    assert "cv_macro_f1" in training["metrics"]  # type: ignore[operator]
    assert any(t.startswith("artifact_sha256=") for t in training["tags"])  # type: ignore[attr-defined]
    assert "validated" in sessions["model_validation"]["tags"]  # type: ignore[operator]
    assert "production" in sessions["model_promotion"]["tags"]  # type: ignore[operator]
    settings = get_settings()
    runs = MlflowClient(settings.mlflow_uri).search_runs(
        [e.experiment_id for e in MlflowClient(settings.mlflow_uri).search_experiments()]
    )
    assert {r.info.run_name for r in runs} >= STAGES  # the same runs in MLflow

    again = conforto_cli("pipeline", "run", "--config", str(config), *data, env=clearml_env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "reusing version 1" in again.stdout
    assert "registered version" not in again.stdout

    forced = conforto_cli(
        "pipeline", "run", "--config", str(config), "--force", *data, env=clearml_env
    )
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "registered version 2" in forced.stdout
    gate = json.loads((home / "reports" / "gate-v2" / "gate.json").read_text())
    assert gate["champion"] == "1"
    assert gate["oof_source"] == "stored"  # same data and folds: the artifacts' predictions
    delta = next(c for c in gate["checks"] if c["name"].endswith("macro-F1"))
    assert delta["value"] == pytest.approx(0.0)  # same data, config and seed: the same model
    assert "production version: 2" in forced.stdout

    config.write_text(CONFIG.replace("SEED", "7"))  # another seed: a new config, a challenger
    changed = conforto_cli("pipeline", "run", "--config", str(config), *data, env=clearml_env)
    assert "registered version 3" in changed.stdout, changed.stdout + changed.stderr
    gate = json.loads((home / "reports" / "gate-v3" / "gate.json").read_text())
    assert gate["champion"] == "2"
    assert changed.returncode == (0 if gate["passed"] else 1)
    listed = json.loads(conforto_cli("model", "list", "--json", env=clearml_env).stdout)
    verdict = "validated" if gate["passed"] else "rejected"
    assert verdict in next(v for v in listed if v["version"] == "3")["tags"]


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A server that is there but is not ClearML: records the paths, answers 500."""

    paths: ClassVar[list[str]] = []

    def _answer(self) -> None:
        self.paths.append(self.path)
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"meta": {"result_code": 500, "result_msg": "not clearml"}}')

    do_GET = do_POST = _answer  # noqa: N815 - the names http.server dispatches to

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def not_clearml() -> Iterator[str]:
    with in_thread(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"


def test_import_offline_keeps_sessions_until_a_server_accepts_them(
    home: Path,
    data_files: tuple[Path, Path],
    clearml_env: dict[str, str],
    not_clearml: str,
) -> None:
    m, d = data_files
    stage = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; "
            "from conforto._lifecycle.stages import data_stage; "
            "from conforto._tracking.clearml import ClearmlTracker; "
            "data_stage(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), "
            "tracker=ClearmlTracker())",
            str(m),
            str(d),
            str(home / "reports"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, **clearml_env},
    )
    assert stage.returncode == 0, stage.stderr
    cache = Path(clearml_env["CLEARML_CACHE_DIR"])
    (session,) = (cache / "offline").glob("*.zip")
    with zipfile.ZipFile(session) as archive:
        task = json.loads(archive.read("task.json"))
        names = archive.namelist()
    assert task["project_name"] == "conforto_termico/data_validation"
    assert "validation=passed" in task["tags"]
    assert any(n.endswith("validation.html") for n in names)

    offline = conforto_cli("tracking", "import-offline", env=clearml_env)
    assert offline.returncode == 1
    assert "no ClearML server answers" in offline.stderr
    assert "1 sessions stay" in offline.stderr

    online = {
        "CLEARML_CACHE_DIR": clearml_env["CLEARML_CACHE_DIR"],
        "CLEARML_OFFLINE_MODE": "",
        "CLEARML_API_HOST": not_clearml,
        "CLEARML_WEB_HOST": not_clearml,
        "CLEARML_FILES_HOST": not_clearml,
        "CLEARML_API_ACCESS_KEY": "key",
        "CLEARML_API_SECRET_KEY": "secret",
    }
    refused = conforto_cli("tracking", "import-offline", env=online)
    assert refused.returncode == 1
    assert f"ClearML did not accept {session.name}" in refused.stderr
    assert any(p.startswith("/auth.login") for p in _Recorder.paths)  # the SDK reached the wire
    assert not list((cache / "offline").glob("*.imported"))  # still pending: nothing lost


def test_pipeline_reads_the_data_from_settings_and_its_gate_rejects_a_60_vote_model(
    data_files: tuple[Path, Path], home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    m, d = data_files
    monkeypatch.setenv("CONFORTO_MEASUREMENTS", str(m))
    monkeypatch.setenv("CONFORTO_METADATA", str(d))
    result = CliRunner().invoke(app, ["pipeline", "run"])
    assert result.exit_code == 1, result.output
    assert {p.name for p in (home / "reports").iterdir()} >= {
        "validation.json",
        "validation.html",
        "profile.json",
        "profile.html",
    }
    assert "registered version 1" in result.output
    # 60 synthetic votes teach the booster less than PMV knows: the gate says so, and production
    # stays empty
    assert "version 1 rejected: beats PMV" in result.output
    assert "production version: none" in result.output
    assert not (home / "registry" / "production.json").exists()
