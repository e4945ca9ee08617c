"""One lifecycle for every machine: two ``CONFORTO_HOME``s (two machines) against one real
``mlflow server`` (PostgreSQL store, proxied artifacts), through the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conforto._registry.model_registry import Registry, open_registry
from conforto._settings import Settings, TrackingSettings
from tests.cli import conforto_cli
from tests.processes import FailingProxy, in_thread

if TYPE_CHECKING:
    from tests.processes import Daemon


def _machines(url: str, tmp_path: Path, lease_s: float = 300.0) -> list[dict[str, str]]:
    """Two machines' settings: one server (this test's own registered model), two homes."""
    shared = {
        "CONFORTO_TRACKING__URI": url,
        "CONFORTO_TRACKING__MODEL_NAME": f"conforto-{uuid.uuid4().hex[:8]}",
        "CONFORTO_TRACKING__LEASE_S": str(lease_s),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",  # a server that is down fails the command now
    }
    return [{**shared, "CONFORTO_HOME": str(tmp_path / name)} for name in ("one", "other")]


def _ok(*args: str, env: dict[str, str]) -> str:
    done = conforto_cli(*args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _registry(env: dict[str, str]) -> Registry:
    """The registry as the machine ``env`` describes sees it, in this process."""
    tracking = TrackingSettings(
        uri=env["CONFORTO_TRACKING__URI"],
        model_name=env["CONFORTO_TRACKING__MODEL_NAME"],
        lease_s=float(env["CONFORTO_TRACKING__LEASE_S"]),
    )
    return open_registry(Settings(home=Path(env["CONFORTO_HOME"]), tracking=tracking))


def _state(env: dict[str, str]) -> tuple[str | None, list[str], list[str]]:
    """The production alias, the audit's production history and the versions tagged
    production, as one machine reads them after reconciling (as every command starts)."""
    registry = _registry(env)
    registry.reconcile()
    tagged = [v.version for v in registry.store.versions() if "production" in v.tags]
    return registry.store.alias_version("production"), registry.history(), tagged


def _two_versions(env: dict[str, str], first: Path, second: Path) -> None:
    """Register two versions from the machine ``env`` (in this process: registering is what
    the tracking-server tests check through the command line)."""
    registry = _registry(env)
    for model in (first, second):
        registry.register(model)


def test_a_promotion_on_one_machine_is_seen_and_rolled_back_on_the_other(
    mlflow_server: Daemon, trained_model: Path, second_model: Path, tmp_path: Path
) -> None:
    one, other = _machines(mlflow_server.url, tmp_path)
    _two_versions(one, trained_model, second_model)
    for version in ("1", "2"):
        _registry(one).promote(version, force=True, reason=f"to {version}")
    _ok("model", "promote", "1", "--force", "--reason", "to 1", env=one)
    deployer = _registry({**one, "CONFORTO_HOME": str(tmp_path / "deployer")})
    deployer.tag("1", "deployed-abc1234", "staging")  # as `conforto deploy` records a deploy

    shown = json.loads(_ok("model", "show", "production", env=other))
    assert (shown["version"], "deployed-abc1234" in shown["tags"]) == ("1", True)
    moves = json.loads(_ok("model", "audit", "--json", env=other))
    assert [(m["action"], m["from"], m["to"]) for m in moves] == [
        ("promote", None, "1"),
        ("promote", "1", "2"),
        ("promote", "2", "1"),
    ]
    _ok("model", "rollback", "--reason", "step back", env=other)
    assert _state(one)[0] == "2"  # the first machine sees the other's rollback
    _ok("model", "rollback", env=other)
    assert _state(one) == ("1", ["1"], ["1"])
    refused = conforto_cli("model", "rollback", env=one)
    assert refused.returncode == 1
    assert "no earlier production version" in refused.stderr
    for home in (one, other):  # nothing of the lifecycle kept on either disk
        registry = Path(home["CONFORTO_HOME"]) / "registry"
        assert not (registry / "audit.jsonl").exists()
        assert not (registry / "intent.json").exists()
    pointer = json.loads((tmp_path / "other" / "registry" / "production.json").read_text())
    assert pointer["version"] == "1"  # the cache the service reads, refreshed


#: One machine's side of the race, in a process of its own: for each line on stdin (``promote
#: VERSION`` or ``rollback``), what a registry command does (reconcile, then move production),
#: answered with one JSON line: ``made``, ``busy`` (the loser's message) or ``refused``.
RACER = """
import json, sys
from conforto.errors import RegistryBusy, RegistryError
from conforto._registry.model_registry import open_registry
from conforto._settings import get_settings

registry = open_registry(get_settings())
for line in sys.stdin:
    action, *version = line.split()
    try:
        registry.reconcile()
        if action == "promote":
            move = registry.promote(version[0], force=True, command="race")
        else:
            move = registry.rollback(command="race")
        answer = {"made": move is not None}
    except RegistryBusy as exc:
        answer = {"busy": str(exc)}
    except RegistryError as exc:
        answer = {"refused": str(exc)}
    print(json.dumps(answer), flush=True)
"""


def test_promotions_raced_from_two_machines_leave_alias_and_audit_agreeing(
    mlflow_server: Daemon, trained_model: Path, second_model: Path, tmp_path: Path
) -> None:
    """Twenty rounds of a promotion on one machine against a promotion or a rollback on the
    other, sent to both at once (two processes, each started once: the race is in the moves,
    not in the interpreters' start)."""
    machines = _machines(mlflow_server.url, tmp_path)
    _two_versions(machines[0], trained_model, second_model)
    _registry(machines[0]).promote("1", force=True)
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER],
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for env in machines
    ]
    made, lost = 1, 0
    try:
        for round_ in range(20):
            commands = ["promote 2", "rollback" if round_ % 2 else "promote 1"]
            for racer, command in zip(racers, commands, strict=True):
                assert racer.stdin is not None
                racer.stdin.write(f"{command}\n")
                racer.stdin.flush()
            for racer in racers:
                assert racer.stdout is not None
                answer = json.loads(racer.stdout.readline())
                if "refused" in answer:  # the rollback ran first: nothing to roll back to
                    assert "no earlier production version" in answer["refused"], answer
                elif "busy" in answer:
                    assert "another command" in answer["busy"], answer  # the loser is told why
                    lost += 1
                elif answer["made"]:
                    made += 1
            alias, history, tagged = _state(machines[round_ % 2])
            assert history[-1] == alias, round_
            assert tagged == [alias], round_
    finally:
        for racer in racers:
            racer.communicate(timeout=60)
    assert [racer.returncode for racer in racers] == [0, 0]
    moves = json.loads(_ok("model", "audit", "--json", env=machines[1]))
    assert len(moves) == made  # every move reported made is in the audit, once
    print(f"20 rounds: {made - 1} moves made, {lost} commands told another was moving")


def _lease_end(env: dict[str, str]) -> None:
    """Let the newest lease of this model expire now, as a stalled command's does once its
    time is up: its record on the server says it expired a second ago (the clock moved on,
    without waiting for it)."""
    from mlflow import MlflowClient

    client = MlflowClient(env["CONFORTO_TRACKING__URI"], env["CONFORTO_TRACKING__URI"])
    prefix = f"{env['CONFORTO_TRACKING__MODEL_NAME']}.moves."
    found = client.search_registered_models(f"name LIKE '{prefix}%'")
    newest = max(found, key=lambda m: m.name)
    assert float(newest.tags["expires"]) > time.time()  # it would still hold everyone off
    client.set_registered_model_tag(newest.name, "expires", f"{time.time() - 1:.3f}")


@pytest.mark.parametrize("point", ["before-alias", "after-alias", "after-tags", "after-audit"])
def test_a_promotion_killed_at_each_checkpoint_is_settled_by_the_other_machine(
    mlflow_server: Daemon, trained_model: Path, second_model: Path, tmp_path: Path, point: str
) -> None:
    one, other = _machines(mlflow_server.url, tmp_path)
    _two_versions(one, trained_model, second_model)
    _registry(one).promote("1", force=True)
    killed = conforto_cli(
        "model", "promote", "2", "--force", "--reason", "r", env={**one, "CONFORTO_CRASH_AT": point}
    )
    assert killed.returncode == -9, killed.stderr
    busy = conforto_cli("model", "rollback", env=other)
    assert busy.returncode == 4  # try again: the code scripts and workflows can wait on
    assert "another command is moving production" in busy.stderr  # its lease still runs
    _lease_end(other)
    listed = conforto_cli("model", "list", "--json", env=other)  # any command reconciles first
    assert listed.returncode == 0, listed.stderr
    expected = "1" if point == "before-alias" else "2"
    assert _state(other) == (expected, ["1", expected] if expected == "2" else ["1"], [expected])
    if point in ("after-alias", "after-tags"):
        moves = json.loads(_ok("model", "audit", "--json", env=one))
        assert moves[-1]["reason"] == "r (completed after an interruption)"


def test_a_server_gone_mid_promotion_is_a_clear_error_and_is_settled_later(
    mlflow_server: Daemon, trained_model: Path, second_model: Path, tmp_path: Path
) -> None:
    with in_thread(
        FailingProxy(mlflow_server.url, "POST /api/2.0/mlflow/registered-models/alias")
    ) as proxy:
        one, other = _machines(proxy.url, tmp_path)
        _two_versions(one, trained_model, second_model)
        cut = conforto_cli("model", "promote", "2", "--force", env=one)
    assert cut.returncode == 1
    assert "Traceback" not in cut.stderr
    last = cut.stderr.strip().splitlines()[-1]  # one line, after MLflow's progress bars
    assert last.startswith(f"error: the registry at {proxy.url} failed"), last
    assert not (tmp_path / "one" / "registry" / "production.json").exists()  # nothing local

    other["CONFORTO_TRACKING__URI"] = mlflow_server.url  # the server answers again
    _lease_end(other)
    assert _state(other) == ("2", ["2"], ["2"])  # the move the server made is completed
    one["CONFORTO_TRACKING__URI"] = mlflow_server.url
    pointer = json.loads(_ok("model", "show", "production", env=one))
    assert pointer["version"] == "2"


def test_push_registry_moves_the_embedded_lifecycle_to_the_server(
    mlflow_server: Daemon, trained_model: Path, second_model: Path, tmp_path: Path
) -> None:
    server, other = _machines(mlflow_server.url, tmp_path)
    name = server["CONFORTO_TRACKING__MODEL_NAME"]
    laptop = Settings(home=tmp_path / "laptop", tracking=TrackingSettings(model_name=name))
    embedded = open_registry(laptop)  # the embedded default: no tracking URI
    for model in (trained_model, second_model):
        embedded.register(model)
    report = tmp_path / "gate.html"
    report.write_text("<h1>gate of version 1</h1>")
    embedded.record_gate("1", True, "passed", [report])
    embedded.promote("1")
    embedded.promote("2", force=True, reason="try it")
    embedded.rollback(reason="worse")

    laptop_env = {"CONFORTO_HOME": str(laptop.home)}
    pushed = conforto_cli(
        "model",
        "push-registry",
        "--to",
        mlflow_server.url,
        env={
            **laptop_env,
            "CONFORTO_TRACKING__MODEL_NAME": server["CONFORTO_TRACKING__MODEL_NAME"],
        },
    )
    assert pushed.returncode == 0, pushed.stderr
    assert "versions 1 → 1, 2 → 2; 3 audit moves written; production: 1" in pushed.stdout
    assert _state(other) == ("1", ["1"], ["1"])
    moves = json.loads(_ok("model", "audit", "--json", env=other))
    assert [m.to_json() for m in embedded.audit()] == moves  # the same history, word for word
    shown = json.loads(_ok("model", "show", "1", env=other))
    assert "validated" in shown["tags"]
    assert shown["gate_report"].startswith("runs:/")

    again = conforto_cli(
        "model",
        "push-registry",
        env={**laptop_env, **{k: v for k, v in server.items() if k != "CONFORTO_HOME"}},
    )
    assert again.returncode == 0, again.stderr
    assert "0 audit moves written" in again.stdout  # nothing twice

    stranger = open_registry(laptop.model_copy(update={"home": tmp_path / "stranger"}))
    stranger.register(second_model)
    stranger.promote("1", force=True)
    refused = conforto_cli(
        "model",
        "push-registry",
        "--to",
        mlflow_server.url,
        env={
            "CONFORTO_HOME": str(tmp_path / "stranger"),
            "CONFORTO_TRACKING__MODEL_NAME": server["CONFORTO_TRACKING__MODEL_NAME"],
        },
    )
    assert refused.returncode == 1
    assert "already has an audit log of its own (3 moves)" in refused.stderr
    assert json.loads(_ok("model", "audit", "--json", env=other)) == moves  # untouched
