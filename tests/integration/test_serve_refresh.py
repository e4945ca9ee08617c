"""``conforto serve`` with a tracking server: refreshed first, and still starting when the server
cannot be reached (what the machine has serves)."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from conforto._cli import app
from conforto._settings import get_settings
from tests.processes import free_port

pytestmark = pytest.mark.integration


def test_serve_starts_with_a_warning_when_the_tracking_server_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.append(kwargs))
    monkeypatch.setenv("CONFORTO_TRACKING__URI", f"http://127.0.0.1:{free_port()}")  # nobody
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["serve", "--port", str(free_port())])
    assert result.exit_code == 0, result.output
    assert "not refreshed from the server" in result.stderr
    assert len(started) == 1  # uvicorn was started all the same
