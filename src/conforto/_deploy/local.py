"""Deploying on one machine: staging → production, blue/green behind nginx, rollback by itself.

A deploy starts the version in the idle slot, waits for ``/ready``, runs the smoke test, points
nginx at it with a graceful reload, drains and stops the old slot, records the deploy in
``$CONFORTO_HOME/deploy/history.jsonl`` and tags the registry version ``deployed-<git sha>``.
Any failed step rolls back by itself: the new slot is stopped, the old one never stopped
serving, and the failure is recorded with its reason. Production takes only a version that
passed staging, unless forced.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from conforto._deploy.slots import SLOTS, Nginx, Slot, free_port
from conforto._deploy.smoke import smoke
from conforto._fileio import atomic_write_json
from conforto._lineage import current_user, timestamp
from conforto._model.artifact import load_model
from conforto._notify import Message, context, header, section
from conforto.errors import ConfortoError, RegistryError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conforto._settings import DeploySettings

ENVIRONMENTS = ("staging", "production")


@dataclass
class Outcome:
    """A deploy's record (one line of ``history.jsonl``)."""

    environment: str
    version: str
    ok: bool
    reason: str
    slot: str | None = None
    port: int | None = None
    previous: str | None = None
    time: str = field(default_factory=timestamp)
    user: str = field(default_factory=current_user)

    def line(self) -> str:
        """The one line a person reads."""
        if not self.ok:
            return (
                f"{self.environment}: version {self.version} not deployed (what served still "
                f"serves): {self.reason}"
            )
        where = f"{self.environment}: version {self.version} deployed to the {self.slot} slot"
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class Active:
    """What an environment serves (its ``state.json``): the slot, its port, the version and its
    artifact folder.
    """

    slot: str
    port: int
    version: str
    artifact: str


@dataclass(frozen=True)
class SlotStatus:
    """One slot of an environment, as ``conforto deploy status`` shows it."""

    environment: str
    slot: str
    active: bool
    version: str | None
    port: int | None
    pid: int | None
    nginx: str | None
    healthy: bool


class LocalDeployer:
    """Blue/green deploys of registered versions, per environment, under ``home/deploy``.

    Parameters
    ----------
    home
        ``CONFORTO_HOME``.
    settings
        Ports, timeouts, drain time and the optional image.
    resolve
        A registry version (or ``production``) → its number and verified artifact folder.
    """

    def __init__(
        self,
        home: Path,
        settings: DeploySettings,
        resolve: Callable[[str], tuple[str, Path]],
    ) -> None:
        self.root = home / "deploy"
        self.settings = settings
        self.resolve = resolve

    # ------------------------------------------------------------------------------ state

    def _env(self, environment: str) -> Path:
        if environment not in ENVIRONMENTS:
            raise ConfortoError(f"unknown environment {environment!r}: staging or production.")
        return self.root / environment

    def nginx(self, environment: str) -> Nginx:
        """The environment's nginx (on its stable port)."""
        port = self.settings.port if environment == "production" else self.settings.staging_port
        return Nginx(self._env(environment), port, environment)

    def state(self, environment: str) -> Active | None:
        """What the environment serves (``None`` when nothing runs)."""
        path = self._env(environment) / "state.json"
        return Active(**json.loads(path.read_text())) if path.is_file() else None

    def history(self) -> list[Outcome]:
        """Every deploy, oldest first."""
        path = self.root / "history.jsonl"
        if not path.is_file():
            return []
        lines = path.read_text().splitlines()
        return [Outcome(**json.loads(line)) for line in lines if line.strip()]

    def _record(self, outcome: Outcome) -> Outcome:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "history.jsonl").open("a") as handle:
            handle.write(json.dumps(asdict(outcome)) + "\n")
        return outcome

    # ---------------------------------------------------------------------------- deploying

    def deploy(
        self, environment: str, version: str = "production", *, force: bool = False
    ) -> Outcome:
        """Deploy ``version`` to ``environment`` (blue/green; see the module docstring).

        Returns
        -------
        Outcome
            ``ok`` when the new version serves; otherwise the old one still does, and the
            reason says which step failed.
        """
        current = self.state(environment)
        try:
            number, artifact = self.resolve(version)
        except ConfortoError as exc:  # unknown version, missing or corrupt artifact
            return self._record(Outcome(environment, version, False, str(exc)))
        if environment == "production" and not force and not self._passed_staging(number):
            reason = f"version {number} has not passed staging: deploy it there first, or --force"
            return self._record(Outcome(environment, number, False, reason))
        idle = "green" if current is not None and current.slot == "blue" else "blue"
        slot, port = Slot(self._env(environment), idle), free_port()
        slot.stop()  # a slot left over by an interrupted deploy
        slot.start(artifact, port, image=self.settings.image)
        failure = slot.wait_ready(port, self.settings.ready_timeout)
        if failure is None:
            checked = smoke(f"http://127.0.0.1:{port}", load_model(artifact, verify=False))
            failure = None if checked.passed else f"smoke test failed: {checked.reason}"
        if failure is not None:
            slot.stop()
            return self._record(Outcome(environment, number, False, failure, idle, port))
        self._switch(environment, idle, port)
        previous = Slot(self._env(environment), current.slot) if current else None
        atomic_write_json(
            self._env(environment) / "state.json", asdict(Active(idle, port, number, str(artifact)))
        )
        if previous is not None and previous.name != idle:
            time.sleep(self.settings.drain_seconds)  # requests under way finish on the old one
            previous.stop()
        reason = f"ready, smoke test passed, nginx on 127.0.0.1:{self.nginx(environment).port}"
        return self._record(
            Outcome(
                environment, number, True, reason, idle, port, current.version if current else None
            )
        )

    def _passed_staging(self, version: str) -> bool:
        return any(
            h.environment == "staging" and h.version == version and h.ok for h in self.history()
        )

    def _switch(self, environment: str, slot: str, port: int) -> None:
        """Point nginx at the new slot and wait until it answers through nginx."""
        nginx = self.nginx(environment)
        nginx.route(slot, port)
        deadline = time.monotonic() + self.settings.ready_timeout
        while nginx.routed_to() != slot and time.monotonic() < deadline:
            time.sleep(0.05)

    def rollback(self, environment: str) -> Outcome:
        """Deploy again the version that served before the current one (blue/green again).

        Raises
        ------
        RegistryError
            When there is no earlier deployed version.
        """
        deployed = [h.version for h in self.history() if h.environment == environment and h.ok]
        active = self.state(environment)
        current = active.version if active else None
        earlier = [v for v in deployed if v != current]
        if not earlier:
            raise RegistryError(f"{environment} has no earlier deployed version to roll back to.")
        return self.deploy(environment, earlier[-1], force=True)

    # ------------------------------------------------------------------------------- status

    def status(self) -> list[SlotStatus]:
        """Per environment: active slot, version, ports, pids and health."""
        rows = []
        for environment in ENVIRONMENTS:
            state, nginx = self.state(environment), self.nginx(environment)
            for name in SLOTS:
                slot = Slot(self._env(environment), name)
                serving = state if state is not None and state.slot == name else None
                if slot.pid is None and serving is None:
                    continue
                rows.append(
                    SlotStatus(
                        environment,
                        name,
                        serving is not None,
                        serving.version if serving else None,
                        serving.port if serving else None,
                        slot.pid,
                        f"127.0.0.1:{nginx.port}" if nginx.pid else None,
                        serving is not None and nginx.routed_to() == name,
                    )
                )
        return rows

    def stop(self, environment: str | None = None) -> list[str]:
        """Stop the slots and nginx of ``environment`` (of both without one); what was stopped."""
        stopped = []
        for env in [environment] if environment else list(ENVIRONMENTS):
            nginx = self.nginx(env)
            if nginx.pid is not None:
                nginx.stop()
                stopped.append(f"{env}: nginx")
            for name in SLOTS:
                slot = Slot(self._env(env), name)
                if slot.pid is not None:
                    slot.stop()
                    stopped.append(f"{env}: {name} slot")
            (self._env(env) / "state.json").unlink(missing_ok=True)
        return stopped


def deploy_message(
    environment: str, version: str, *, ok: bool, detail: str = "", url: str = ""
) -> Message:
    """A deploy finished, or rolled itself back."""
    verdict = "deployed" if ok else "deploy failed, rolled back"
    blocks = [
        header(f"{environment}: version {version} {verdict}"),
        section(detail or "-"),
        context(url or environment),
    ]
    icon = ":rocket:" if ok else ":x:"
    return Message("deploy", f"{icon} conforto {environment}: version {version} {verdict}", blocks)
