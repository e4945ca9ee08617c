"""Blue/green deploys on one machine, behind a real nginx, under load: nothing dropped."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from conforto._model.artifact import GOLDEN, load_model, read_manifest, save_manifest
from conforto._registry.model_registry import open_registry
from conforto._settings import get_settings
from tests.cli import conforto_cli
from tests.processes import free_port, wait_for_more

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration
OBS = {"ta": 24.5, "rh": 55.0, "vel": 0.15, "met": 1.1, "clo": 0.6}
#: The pause between one load thread's requests [s].
PACE = 0.01


class Load:
    """Requests to a URL from two threads until stopped, each at most :data:`PACE` [s] apart
    (traffic, not a flood: the suite's other workers share the cores): every answer and failure
    kept."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[tuple[float, str | None, str]] = []  # time, slot, model version
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    answer = client.post(self.url, json=OBS)
                    if answer.status_code != 200:
                        self.failures.append(f"{answer.status_code}: {answer.text[:100]}")
                        continue
                    slot = answer.headers.get("x-conforto-slot")
                    self.answers.append((time.monotonic(), slot, answer.json()["model_version"]))
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                self._stop.wait(PACE)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def slots_between(self, start: float, end: float) -> set[str | None]:
        return {slot for when, slot, _ in self.answers if start <= when <= end}


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def ports(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, int]]:
    production, staging = free_port(), free_port()
    monkeypatch.setenv("CONFORTO_DEPLOY__PORT", str(production))
    monkeypatch.setenv("CONFORTO_DEPLOY__STAGING_PORT", str(staging))
    monkeypatch.setenv("CONFORTO_DEPLOY__DRAIN_SECONDS", "1")
    yield production, staging
    conforto_cli("deploy", "stop")  # whatever a failure left running


def _broken_golden(model: Path, folder: Path) -> Path:
    """A copy of ``model`` whose golden predictions are not the model's: its smoke test fails."""
    copy = folder / "bad-golden"
    shutil.copytree(model, copy)
    golden = json.loads((copy / GOLDEN).read_text())
    for case in golden["cases"]:
        case["probabilities"] = {"cool": 0.9, "neutral": 0.05, "warm": 0.05}
    (copy / GOLDEN).write_text(json.dumps(golden))
    save_manifest(copy, read_manifest(copy))
    return copy


def _deploy(*args: str) -> tuple[int, str, float, float]:
    start = time.monotonic()
    done = conforto_cli("deploy", "local", *args)
    return done.returncode, done.stdout + done.stderr, start, time.monotonic()


def _variant(model: Path, folder: Path, note: str) -> Path:
    """A copy of ``model`` that registers as a version of its own (its manifest differs)."""
    copy = folder / note
    shutil.copytree(model, copy)
    save_manifest(copy, read_manifest(copy).model_copy(update={"note": note}))
    return copy


def test_blue_green_under_load_drops_nothing_and_never_serves_a_broken_version(
    home: Path,
    trained_model: Path,
    second_model: Path,
    ports: tuple[int, int],
    tmp_path: Path,
) -> None:
    production, _ = ports
    registry = open_registry(get_settings())
    for directory in (
        trained_model,
        second_model,
        _variant(trained_model, tmp_path, "corrupt"),
        _broken_golden(trained_model, tmp_path),
    ):
        registry.register(directory, force=True)  # copies of one training, tampered
    corrupt = registry.store.get("3").artifact
    assert corrupt is not None
    (corrupt / "booster.txt").write_text("tree\n")  # after registration: its checksum fails
    first, second = load_model(trained_model).version, load_model(second_model).version

    assert _deploy("--env", "staging", "--version", "1")[0] == 0
    refused = _deploy("--env", "production", "--version", "2")
    assert refused[0] == 1
    assert "has not passed staging" in refused[1]
    assert _deploy("--env", "production", "--version", "1")[0] == 0
    with Load(f"http://127.0.0.1:{production}/predict") as load:
        wait_for_more(load.answers, 50)
        assert _deploy("--env", "staging", "--version", "2")[0] == 0
        code, out, start, end = _deploy("--env", "production", "--version", "2")
        assert code == 0, out
        for version, reason in (("3", "is corrupt"), ("4", "smoke test failed")):
            code, out, start, end = _deploy("--env", "production", "--version", version, "--force")
            assert code == 1
            assert reason in out
            assert "not deployed" in out
            assert len(load.slots_between(start, end)) == 1  # traffic never moved
        wait_for_more(load.answers, 50)
    assert load.failures == []
    assert len(load.answers) > 100
    served = [version for _, _, version in load.answers]
    assert set(served) == {first, second}  # the broken versions never answered
    assert served[-1] == second  # the last good one serves at the end
    status = conforto_cli("deploy", "status")
    assert "production" in status.stdout
    assert "staging" in status.stdout
    lines = (home / "deploy/history.jsonl").read_text().splitlines()
    history = [json.loads(line) for line in lines]
    assert [(h["environment"], h["version"], h["ok"]) for h in history] == [
        ("staging", "1", True),
        ("production", "2", False),
        ("production", "1", True),
        ("staging", "2", True),
        ("production", "2", True),
        ("production", "3", False),
        ("production", "4", False),
    ]
    assert any(t.startswith("deployed-") for t in registry.store.get("2").tags)
    assert not any(t.startswith("deployed-") for t in registry.store.get("4").tags)


@pytest.mark.parametrize("home", ["absolute", "relative"], indirect=True)  # a new user's too
def test_rollback_goes_back_under_load_and_stop_frees_every_port(
    trained_model: Path,
    second_model: Path,
    ports: tuple[int, int],
) -> None:
    production, staging = ports
    registry = open_registry(get_settings())
    registry.register(trained_model)
    registry.register(second_model)
    for version in ("1", "2"):
        assert _deploy("--env", "production", "--version", version, "--force")[0] == 0
    with Load(f"http://127.0.0.1:{production}/predict") as load:
        wait_for_more(load.answers, 20)
        back = conforto_cli("deploy", "rollback", "--env", "production")
        assert back.returncode == 0, back.stdout + back.stderr
        assert "version 1 deployed" in back.stdout
        wait_for_more(load.answers, 20)
    assert load.failures == []
    assert load.answers[-1][2] == load_model(trained_model).version
    stopped = conforto_cli("deploy", "stop")
    assert stopped.returncode == 0
    assert "production: nginx" in stopped.stdout
    assert not _listening(production)
    assert not _listening(staging)
    assert "nothing deployed" in conforto_cli("deploy", "status").stdout
