"""The commands against a real ``mlflow server`` (``CONFORTO_TRACKING__URI``), as the workflows
run them."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

from tests.cli import conforto_cli

if TYPE_CHECKING:
    from pathlib import Path

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
    assert json.loads(registered.stdout) == {"version": "1", "created": True}
    assert "View run" in registered.stderr  # MLflow's own lines, out of the way
    again = conforto_cli("model", "register", str(trained_model), "--json", env=env)
    assert json.loads(again.stdout) == {"version": "1", "created": False}
    listed = conforto_cli("model", "list", "--json", env=env)
    assert [v["version"] for v in json.loads(listed.stdout)] == ["1"]
    shown = conforto_cli("model", "show", "1", env=env)
    assert json.loads(shown.stdout)["version"] == "1"
