"""The commands against a real ``mlflow server`` (``CONFORTO_TRACKING__URI``), as the workflows
run them, each job on another machine (another ``CONFORTO_HOME``)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from tests import processes
from tests.cli import conforto_cli

if TYPE_CHECKING:
    from tests.processes import Daemon


def test_json_commands_print_only_json_whatever_mlflow_prints(
    mlflow_server: Daemon, trained_model: Path
) -> None:
    env = {
        "CONFORTO_TRACKING__URI": mlflow_server.url,
        "CONFORTO_TRACKING__MODEL_NAME": f"conforto-{uuid.uuid4().hex[:8]}",  # this test's own
    }
    registered = conforto_cli("model", "register", str(trained_model), "--json", env=env)
    assert registered.returncode == 0, registered.stderr
    new = {"version": "1", "created": True, "unchanged": False, "judged": False}
    assert json.loads(registered.stdout) == new
    assert "View run" in registered.stderr  # MLflow's own lines, out of the way
    again = conforto_cli("model", "register", str(trained_model), "--json", env=env)
    assert json.loads(again.stdout) == {**new, "created": False}
    listed = conforto_cli("model", "list", "--json", env=env)
    assert [v["version"] for v in json.loads(listed.stdout)] == ["1"]
    shown = conforto_cli("model", "show", "1", env=env)
    assert json.loads(shown.stdout)["version"] == "1"


def test_a_machine_that_never_saw_the_version_downloads_and_verifies_it(
    mlflow_server: Daemon, trained_model: Path, holdout_paths: tuple[Path, Path], tmp_path: Path
) -> None:
    server = {
        "CONFORTO_TRACKING__URI": mlflow_server.url,
        "CONFORTO_TRACKING__MODEL_NAME": f"conforto-{uuid.uuid4().hex[:8]}",
    }
    one = {**server, "CONFORTO_HOME": str(tmp_path / "one")}  # a training runner
    other = {**server, "CONFORTO_HOME": str(tmp_path / "other")}  # another machine
    assert conforto_cli("model", "register", str(trained_model), env=one).returncode == 0
    assert conforto_cli("model", "promote", "1", "--force", env=one).returncode == 0

    drift = ("monitor", "drift", "--input", str(holdout_paths[0]), "--out", str(tmp_path / "d"))
    done = conforto_cli(*drift, env=other)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "d" / "drift.json").read_text())["model_version"] == "1"
    cached = tmp_path / "other" / "registry" / "cache" / "v1" / "model"
    pointer = json.loads((tmp_path / "other" / "registry" / "production.json").read_text())
    assert (pointer["version"], Path(pointer["artifact"])) == ("1", cached)
    booster = (trained_model / "booster.txt").read_bytes()
    assert (cached / "booster.txt").read_bytes() == booster  # over HTTP, byte for byte

    (cached / "booster.txt").write_text("changed on this machine")
    shown = conforto_cli("model", "show", "production", env=other)
    assert shown.returncode == 0, shown.stderr
    assert (cached / "booster.txt").read_bytes() == booster  # fetched again, verified


def test_the_gate_report_is_kept_with_the_version_for_every_machine(
    mlflow_server: Daemon, trained_model: Path, tmp_path: Path
) -> None:
    import mlflow.artifacts

    server = {
        "CONFORTO_TRACKING__URI": mlflow_server.url,
        "CONFORTO_TRACKING__MODEL_NAME": f"conforto-{uuid.uuid4().hex[:8]}",
    }
    one = {**server, "CONFORTO_HOME": str(tmp_path / "one")}
    assert conforto_cli("model", "register", str(trained_model), env=one).returncode == 0
    gated = conforto_cli("gate", "1", env=one)
    assert gated.returncode in (0, 1), gated.stderr  # validated or rejected: a verdict either way

    other = {**server, "CONFORTO_HOME": str(tmp_path / "other")}
    shown = json.loads(conforto_cli("model", "show", "1", env=other).stdout)
    assert {"validated", "rejected"} & set(shown["tags"])
    assert shown["gate_report"].startswith("runs:/")
    page = mlflow.artifacts.download_artifacts(
        artifact_uri=shown["gate_report"],
        dst_path=str(tmp_path / "read"),
        tracking_uri=mlflow_server.url,
    )
    assert "version 1" in Path(page).read_text()


def test_a_locked_registry_refuses_strangers_and_what_an_account_may_not_do(
    trained_model: Path, tmp_path: Path
) -> None:
    """MLflow's basic-auth app, as the workflows' server runs it: without credentials every
    command stops and says which variables to set (a stage's runs are not kept for later: they
    would be refused again); the monitoring account reads, and may not move a version."""
    server = processes.mlflow_server(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}", locked=True)
    try:
        processes.lock_registry(server.url)
        uri = {"CONFORTO_TRACKING__URI": server.url, "CONFORTO_HOME": str(tmp_path / "home")}

        def account(user: tuple[str, str]) -> dict[str, str]:
            return {**uri, "MLFLOW_TRACKING_USERNAME": user[0], "MLFLOW_TRACKING_PASSWORD": user[1]}

        stranger = conforto_cli("model", "register", str(trained_model), env=uri)
        assert stranger.returncode != 0
        assert "asks who you are: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in (
            stranger.stderr
        )
        staged = conforto_cli("tracking", "build", "--image", "i", "--commit", "c", env=uri)
        assert staged.returncode != 0
        assert "asks who you are" in staged.stderr
        assert not (tmp_path / "home" / "tracking" / "outbox.jsonl").exists()

        workflow = account(processes.WORKFLOW)
        assert conforto_cli("model", "register", str(trained_model), env=workflow).returncode == 0
        monitoring = account(processes.MONITORING)
        listed = conforto_cli("model", "list", "--json", env=monitoring)
        assert [v["version"] for v in json.loads(listed.stdout)] == ["1"], listed.stderr
        moved = conforto_cli("model", "promote", "1", "--force", env=monitoring)
        assert moved.returncode != 0
        assert "refused monitoring the permission this needs" in moved.stderr
        assert conforto_cli("model", "promote", "1", "--force", env=workflow).returncode == 0
    finally:
        server.stop()
