"""Alerting and dashboards for real: the rules and configs checked by Prometheus' own tools,
then a live service, Pushgateway, Prometheus and Alertmanager on 127.0.0.1 delivering an alert
to a local receiver in Slack's webhook format, and resolving it once a model is promoted."""

from __future__ import annotations

import json
import subprocess
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from conforto._registry.model_registry import open_registry
from conforto._settings import get_settings
from tests.cli import conforto_cli
from tests.factories import REPO
from tests.processes import Daemon, Server, free_port, pushgateway

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.integration

DEPLOY = REPO / "deploy"
TOKEN = "alerting-test-token"  # noqa: S105 - a test's own token
OBS = {"ta": 24.5, "rh": 55.0, "vel": 0.15, "met": 1.1, "clo": 0.6, "season": "summer"}


def _run(*command: str | Path) -> str:
    done = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_prometheus_and_alertmanager_accept_the_configs_and_the_rule_tests_pass() -> None:
    _run("promtool", "check", "config", DEPLOY / "prometheus/prometheus.yml")
    _run("promtool", "check", "rules", DEPLOY / "prometheus/rules.yml")
    tests = sorted((DEPLOY / "prometheus/tests").glob("*.yml"))
    out = _run("promtool", "test", "rules", *tests)
    assert out.count("SUCCESS") == len(tests)
    _run("amtool", "check-config", DEPLOY / "alertmanager/alertmanager.yml")


def test_every_alert_is_documented_and_tested() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus/rules.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    records = [r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r]
    assert all(name.startswith("conforto:") for name in records)
    tested = "".join(p.read_text() for p in (DEPLOY / "prometheus/tests").glob("*.yml"))
    guide = (REPO / "docs" / "guides" / "monitoring.md").read_text()
    for alert in alerts:
        assert alert["labels"]["severity"] in ("critical", "warning"), alert["alert"]
        assert set(alert["annotations"]) == {"summary", "runbook"}, alert["alert"]
        assert "conforto " in alert["annotations"]["runbook"], alert["alert"]
        assert f"alertname: {alert['alert']}" in tested, f"{alert['alert']} has no rule test"
        assert alert["alert"] in guide, f"{alert['alert']} is not in the monitoring guide"
    assert len(alerts) == 14


def _dashboard_queries() -> list[tuple[str, str]]:
    board = json.loads((DEPLOY / "grafana/dashboards/conforto.json").read_text())
    assert {"uid", "title", "schemaVersion", "panels", "time"} <= set(board)
    found = []
    for panel in board["panels"]:
        assert {"id", "type", "title", "gridPos", "datasource", "targets"} <= set(panel)
        for target in panel["targets"]:
            assert "conforto_" in target["expr"] or "conforto:" in target["expr"]
            found.append((panel["title"], target["expr"]))
    return found


def _fast_rules(folder: Path) -> Path:
    """rules.yml with every ``for:`` cut to a second, so the test waits seconds, not minutes."""
    rules = yaml.safe_load((DEPLOY / "prometheus/rules.yml").read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "1s"
    path = folder / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    return path


def _prometheus(folder: Path, service: str, gateway: str, alertmanager: str) -> Daemon:
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(_fast_rules(folder))]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [alertmanager]
    config["scrape_configs"][0]["static_configs"][0]["targets"] = [service]
    config["scrape_configs"][1]["static_configs"][0]["targets"] = [gateway]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    command = [
        "prometheus",
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    return Daemon(command, "/-/ready", port)


def _alertmanager(folder: Path, webhook: str) -> Daemon:
    config = yaml.safe_load((DEPLOY / "alertmanager/alertmanager.yml").read_text())
    (folder / "webhook_url").write_text(webhook)  # the secret, in a file as in production
    for receiver in config["receivers"]:
        receiver["slack_configs"][0]["api_url_file"] = str(folder / "webhook_url")
    config["route"].update(group_wait="1s", group_interval="1s")
    for route in config["route"]["routes"]:
        route.update(group_wait="1s", group_interval="1s")
    (folder / "alertmanager.yml").write_text(yaml.safe_dump(config, allow_unicode=True))
    port = free_port()
    command = [
        "prometheus-alertmanager",
        f"--config.file={folder / 'alertmanager.yml'}",
        f"--storage.path={folder / 'am'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    return Daemon(command, "/-/ready", port)


def _until(what: Callable[[], Any], timeout: float = 60.0, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"not within {timeout} s: {what.__doc__ or what}")


def _posts(received: list[dict[str, Any]], alert: str, status: str) -> list[dict[str, Any]]:
    """Slack posts about ``alert``, firing (🔥/⚠️) or resolved (✅)."""
    return [
        p
        for p in received
        for a in p.get("attachments", [])
        if alert in a.get("title", "") and ("✅" in a["title"]) == (status == "resolved")
    ]


def _alert(alertmanager: Daemon, name: str) -> dict[str, Any] | None:
    """the alert as Alertmanager holds it"""
    alerts = httpx.get(f"{alertmanager.url}/api/v2/alerts").json()
    return next((a for a in alerts if a["labels"]["alertname"] == name), None)


def _votes_stored(client: httpx.Client) -> float:
    """feedback rows the service has written to its log"""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('conforto_prediction_log_writes_total{table="feedback"}'):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.parametrize("home", ["relative"], indirect=True)  # a new user's: no CONFORTO_HOME
def test_an_alert_reaches_slack_and_resolves_and_every_panel_has_data(
    trained_model: Path,
    slack: tuple[str, list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    webhook, received = slack
    env = {"CONFORTO_SERVE__ADMIN_TOKEN": TOKEN, "CONFORTO_SERVE__POLL_SECONDS": "0"}
    service = Server([], env)  # production, of which there is none yet
    service.wait_healthy()
    gateway, alertmanager, prometheus = pushgateway(), _alertmanager(tmp_path, webhook), None
    try:
        target = service.url.removeprefix("http://")
        prometheus = _prometheus(tmp_path, target, gateway.url[7:], alertmanager.url[7:])
        with httpx.Client(base_url=service.url, timeout=10) as client:
            assert client.post("/predict", json=OBS).status_code == 503
            fired = _until(lambda: _posts(received, "ConfortoNoProductionModel", "firing"))
            text = fired[0]["attachments"][0]["text"]
            assert "names no production model" in text
            assert "Runbook: Train and promote one: `conforto pipeline run`" in text
            assert fired[0]["channel"] == "#conforto-alerts"
            assert fired[0]["attachments"][0]["title"].startswith("⚠️")
            # the model is not ready either, but the missing production model explains it
            not_ready = _until(lambda: _alert(alertmanager, "ConfortoModelNotReady"))
            assert not_ready["status"]["state"] == "suppressed"
            assert not _posts(received, "ConfortoModelNotReady", "firing")

            registry = open_registry(get_settings())
            registry.register(trained_model)
            registry.promote("1", force=True, reason="alerting test")
            reload = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
            assert reload.json()["model_version"] == "1"
            _until(lambda: _posts(received, "ConfortoNoProductionModel", "resolved"))

            answers = [client.post("/predict", json=OBS).json() for _ in range(40)]
            for answer in answers:  # each occupant's app (one client's votes are rate-limited)
                vote = {"prediction_id": answer["prediction_id"], "thermal_sensation": 0.0}
                occupant = {"X-Client-Id": answer["prediction_id"]}
                assert client.post("/feedback", json=vote, headers=occupant).status_code == 201
            _until(lambda: _votes_stored(client) == 40)  # the log's buffer is written in batches
        for monitor in ("drift", "performance"):
            done = conforto_cli("monitor", monitor, "--since", "1h", "--push", gateway.url)
            assert done.returncode == 0, done.stdout + done.stderr

        def missing() -> list[str]:
            """dashboard queries without data"""
            empty = []
            for title, expr in _dashboard_queries():
                found = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr})
                if not found.json()["data"]["result"]:
                    empty.append(f"{title}: {expr}")
            return empty

        try:
            _until(lambda: not missing(), timeout=60)
        except AssertionError:
            raise AssertionError(f"dashboard queries without data: {missing()}") from None
    finally:
        for daemon in (prometheus, alertmanager, gateway):
            if daemon is not None:
                daemon.stop()
        service.stop()
