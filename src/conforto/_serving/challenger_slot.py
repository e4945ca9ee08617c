"""Where a challenger runs beside production: one at a time, loaded, started, replaced and
retired by :class:`ChallengerSlot`, which tells every move.

A challenger is a model directory, or a registry version found by the :class:`VersionResolver`
the service was started with (``conforto serve`` gives the registry's; the service never
imports the registry). Each move shows in the ``conforto_challenger`` gauges, in the prediction
log's events (what ``conforto monitor compare`` and the gate's shadow check read), in the
service's log and, for an automatic stop, on Slack.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from conforto._notify import notify
from conforto._serving import telemetry
from conforto._serving.challenger import Challenger, Mode, challenger_message
from conforto._serving.loading import warm_predictor
from conforto.errors import ConfortoError, ReloadError

if TYPE_CHECKING:
    from conforto._predictions.log import PredictionLog
    from conforto._serving.runtime import AfterBatch, Predictor
    from conforto._serving.schemas import ChallengerStatus
    from conforto._settings import Settings

log = logging.getLogger(__name__)
#: A registry version (or ``production``: a dry run of the production model against itself).
VERSION = re.compile(r"^(\d+|production)$")


class VersionResolver(Protocol):
    """The service's way to registry versions, given by whoever starts it (``conforto serve``
    gives the registry's): the service itself never imports the registry, nor MLflow.
    """

    def __call__(self, version: str) -> tuple[Path, str]:
        """The verified model directory of ``version`` (a number, or ``production``) and the
        version it answers as.

        Raises
        ------
        ConfortoError
            When the version does not exist, or its artifact cannot be fetched or verified.
        """
        ...


def resolve(spec: str, resolver: VersionResolver | None) -> tuple[Path, str]:
    """The challenger's model directory and the version it answers as (``""``: the model's own
    content id).

    Raises
    ------
    ReloadError
        When ``spec`` is neither a folder nor a version the registry knows, or is a version and
        the service has no ``resolver`` (the image: it knows only its baked or mounted models).
    """
    path = Path(spec).expanduser()
    try:
        if path.is_dir():
            return path.absolute(), ""
    except (OSError, ValueError):  # a name no file system takes (too long, a NUL byte)
        pass
    if not VERSION.match(spec):
        raise ReloadError(
            f"challenger {spec!r} is neither a model directory nor a registry version: give a "
            "folder made by `conforto train`, or a version number from `conforto model list`."
        )
    if resolver is None:
        raise ReloadError(
            f"challenger version {spec}: this service has no registry (its install has none, as "
            "the image's): it knows only the models baked or mounted in it; give a model "
            "directory instead."
        )
    try:
        return resolver(spec)
    except ConfortoError as exc:
        raise ReloadError(f"challenger version {spec}: {exc}") from None


def load_challenger(
    spec: str, settings: Settings, resolver: VersionResolver | None = None
) -> Predictor:
    """A warmed-up predictor for the challenger ``spec`` (a folder, or a registry version found
    by ``resolver``).

    Raises
    ------
    ReloadError
        When it cannot be resolved or loaded.
    """
    try:
        directory, version = resolve(spec, resolver)
        return warm_predictor(directory, version, settings)
    except ReloadError:
        raise
    except ConfortoError as exc:
        raise ReloadError(f"challenger {spec}: {exc}") from None


class ChallengerSlot:
    """The place beside production where at most one challenger runs, and everything that
    happens to it (module docstring).

    Parameters
    ----------
    settings
        The challenger's limits (``serve.challenger``), the prediction sets' coverage, and
        Slack's webhook for an automatic stop.
    resolver
        Where a challenger named by its registry version is found; ``None``: only model
        directories.
    answered
        Called with every batch a canary answered (the service logs and counts it).
    """

    def __init__(
        self, settings: Settings, resolver: VersionResolver | None, answered: AfterBatch
    ) -> None:
        self.settings = settings
        self.resolver = resolver
        self.current: Challenger | None = None
        #: Where challengers' answers and events go, once the service has started it.
        self.log: PredictionLog | None = None
        self._answered = answered

    def load(self, spec: str, mode: Mode, percent: float) -> Challenger:
        """A challenger for ``spec``, warmed up, not yet in the path (blocking: run it in a
        thread).

        Raises
        ------
        ReloadError
            When it cannot be resolved or loaded.
        """
        return Challenger(
            load_challenger(spec, self.settings, self.resolver),
            self.settings.serve.challenger,
            mode=mode,
            percent=percent,
            log=self.log,
            answered=self._answered,
            on_stop=self._stopped,
        )

    def replace(self, new: Challenger | None, why: str = "removed") -> ChallengerStatus | None:
        """Put ``new`` in the path (``None``: no challenger), retiring the one before, which is
        closed and, if still running, recorded as ``why`` (``removed``, ``promoted``).

        Returns
        -------
        ChallengerStatus or None
            The last status of the one before, if any.
        """
        old, self.current = self.current, new
        if old is not None:
            old.close()
            for state in ("running", "stopped"):
                telemetry.CHALLENGER.labels(old.version, old.mode, state).set(0)
            if old.running:
                self._event(old, why)
            log.info("challenger %s (%s) %s", old.version, old.mode, why)
        if new is not None:
            telemetry.CHALLENGER.labels(new.version, new.mode, "running").set(1)
            self._event(new, "started")
            log.info("challenger %s in %s", new.version, new.mode)
        return None if old is None else old.status()

    def close(self) -> None:
        """Stop the challenger's threads as the service stops (no event: it did not end)."""
        if self.current is not None:
            self.current.close()

    def _event(self, challenger: Challenger, event: str, reason: str = "") -> None:
        if self.log is not None:
            self.log.add_event(challenger.version, challenger.mode, event, reason)

    def _stopped(self, challenger: Challenger, kind: str, reason: str) -> None:
        """The automatic stop fired (in a worker thread): log, count, record and notify it."""
        log.warning("challenger %s (%s) stopped: %s", challenger.version, challenger.mode, reason)
        telemetry.CHALLENGER_STOPS.labels(kind).inc()
        telemetry.CHALLENGER.labels(challenger.version, challenger.mode, "running").set(0)
        telemetry.CHALLENGER.labels(challenger.version, challenger.mode, "stopped").set(1)
        self._event(challenger, "stopped", reason)
        message = challenger_message(
            challenger.version, challenger.mode, reason, challenger.window.figures()
        )
        threading.Thread(
            target=notify, args=(self.settings, message), name="conforto-notify", daemon=True
        ).start()
