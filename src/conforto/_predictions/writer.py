"""The prediction log's writer: a child process that drains the spool into the database.

Building a row for SQLAlchemy (bind processing, JSON, datetimes) costs about 20 µs and holds
the GIL while it runs: beside the event loop, that is throughput lost and latency spikes under
load. The service only appends to its spool; this child reads it (:mod:`.drain`) at the
lowest CPU priority and answers the few calls the service makes through a socket: whether a
prediction is stored, what it has done, and site adaptation's votes and states.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from conforto.errors import ConfigError, LogUnavailable

if TYPE_CHECKING:
    from pathlib import Path

    from conforto._predictions.drain import Drainer, DrainStatus
    from conforto._predictions.sites import SiteState, SiteVote
    from conforto._predictions.store import LogDatabase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriterConfig:
    """What the child needs to know, sent once when it starts (see :class:`LogProcess`)."""

    url: str
    spool: Path
    owner: str | None
    max_bytes: int
    horizon: float


class LogProcess:
    """The spool's writer in a child process, called through a socket.

    It drains this service's spool (and what dead processes left in the same folder) into the
    database, and answers :meth:`has_prediction`, :meth:`status` and site adaptation's
    queries. It runs at the lowest CPU
    priority: when the service needs the whole CPU, rows wait on disk. It is started again
    when it has died (at the next call: the service asks for its status every second); a bad
    URL or a missing driver is reported by every call until the settings are fixed. When the
    service dies, it stores what the service left and exits.

    Parameters
    ----------
    url
        SQLAlchemy database URL.
    spool
        The spool folder.
    owner
        The service process's spool owner name (:attr:`.spool.Spool.owner`).
    max_bytes
        The spool's bound [bytes].
    horizon
        How long a vote may wait for its prediction before it is orphaned [s].
    timeout
        Longest wait for the child to answer one call [s]; past it the child is killed and the
        call fails.
    niceness
        How much lower the child's priority is (``os.nice``; 19 is the lowest).
    """

    def __init__(
        self,
        url: str,
        spool: Path,
        owner: str | None = None,
        *,
        max_bytes: int = 1 << 30,
        horizon: float = 600.0,
        timeout: float = 60.0,
        niceness: int = 19,
    ) -> None:
        self.url = url
        self.config = WriterConfig(url, spool, owner, max_bytes, horizon)
        self.timeout = timeout
        self.niceness = niceness
        self._lock = threading.Lock()  # one call on the pipe at a time
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None

    def start(self) -> LogProcess:
        """Start the child now rather than on the first call (it then loads its database
        driver and stores what earlier processes left while the service starts).
        """
        with self._lock:
            self._connection()
        return self

    @property
    def pid(self) -> int | None:
        """The child's process id (None before the first call)."""
        return self._process.pid if self._process is not None else None

    def has_prediction(self, prediction_id: str) -> bool:
        """Whether a prediction is stored (see :meth:`LogDatabase.has_prediction`)."""
        return bool(self._call("has_prediction", (prediction_id,)))

    def stale_sites(self, model_version: str) -> dict[str, int]:
        """See :meth:`LogDatabase.stale_sites`."""
        found: dict[str, int] = self._call("stale_sites", (model_version,))
        return found

    def site_votes(self, site: str, up_to: int, per_client: int) -> list[SiteVote]:
        """See :meth:`LogDatabase.site_votes`."""
        found: list[SiteVote] = self._call("site_votes", (site, up_to, per_client))
        return found

    def record_state(self, model_version: str, learned: SiteState) -> bool:
        """See :meth:`LogDatabase.record_state`."""
        return bool(self._call("record_state", (model_version, learned)))

    def site_states(self, model_version: str) -> list[SiteState]:
        """See :meth:`LogDatabase.site_states`."""
        found: list[SiteState] = self._call("site_states", (model_version,))
        return found

    def status(self) -> DrainStatus:
        """The writer's counters."""
        found: DrainStatus = self._call("status", None)
        return found

    def _call(self, method: str, argument: Any) -> Any:
        if not self._lock.acquire(timeout=self.timeout):
            raise LogUnavailable(f"the log writer process has been busy for {self.timeout} s")
        try:
            conn = self._connection()
            try:
                conn.send((method, argument))
                if not conn.poll(self.timeout):
                    self._end(kill=True)
                    raise LogUnavailable(
                        f"the log writer process gave no answer in {self.timeout} s: restarted"
                    )
                ok, value = conn.recv()
            except (EOFError, OSError):
                code = self._end(kill=True)
                raise LogUnavailable(
                    f"the log writer process exited (code {code}); it restarts on the next call"
                ) from None
        finally:
            self._lock.release()
        if not ok:
            raise LogUnavailable(value)
        return value

    def _connection(self) -> Connection:
        if self._conn is None:
            # A fresh interpreter running this module: unlike multiprocessing's spawn, it does
            # not re-import the service's main script. The URL (it may hold a password) goes
            # through the socket, not the command line.
            ours, theirs = socket.socketpair()
            with theirs:
                try:
                    self._process = subprocess.Popen(  # noqa: S603 - fixed command
                        [sys.executable, "-m", __name__, str(theirs.fileno()), str(self.niceness)],
                        pass_fds=[theirs.fileno()],
                    )
                except OSError as exc:  # e.g. no process slots left: the next call tries again
                    ours.close()
                    raise LogUnavailable(f"cannot start the log writer process: {exc}") from None
            self._conn = Connection(ours.detach())
            self._conn.send(self.config)
        return self._conn

    def _end(self, *, kill: bool) -> int | None:
        """Stop the child (asking first unless ``kill``) and forget it; its exit code."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is None or conn is None:
            return None
        if not kill:
            with suppress(OSError):
                conn.send(("close", None))
            with suppress(subprocess.TimeoutExpired):
                process.wait(self.timeout)
        conn.close()
        if process.poll() is None:
            process.kill()
        return process.wait()

    def close(self, timeout: float = 10.0) -> bool:
        """Stop the child, then store what is left through this process's own connection.

        At shutdown no request waits for the CPU, and the child, at the lowest priority,
        would be the last to get it: on a busy machine the spool would outlast the grace
        period. What is not stored in ``timeout`` s stays in the spool for the next start.

        Returns
        -------
        bool
            Whether everything was stored.
        """
        from conforto._predictions.store import LogDatabase

        with self._lock:
            self._end(kill=False)
        try:
            database = LogDatabase(self.url)
        except ConfigError as exc:
            log.error("prediction log: %s", exc)
            return False
        drainer = _drainer(self.config, database, owner=None)
        try:
            return drainer.drain(timeout)
        finally:
            drainer.close()
            database.close()


def _drainer(config: WriterConfig, database: LogDatabase, owner: str | None) -> Drainer:
    from conforto._predictions.drain import Drainer

    return Drainer(
        config.spool, database, owner=owner, max_bytes=config.max_bytes, horizon=config.horizon
    )


def serve(conn: Connection, niceness: int) -> None:
    """The child's loop: read the configuration, then drain the spool between calls
    (``(method, argument)``, answered with ``(ok, value)``) until told to close; when the
    service is gone, store what it left, then exit.

    Parameters
    ----------
    conn
        The child's end of the socket.
    niceness
        Added to the child's scheduling niceness.
    """
    os.nice(niceness)  # first: loading the database driver can wait too
    from conforto._predictions.store import LogDatabase

    config: WriterConfig = conn.recv()
    try:
        drainer: Drainer | None = _drainer(config, LogDatabase(config.url), config.owner)
        error = ""
    except ConfigError as exc:
        drainer, error = None, str(exc)
        log.error("prediction log: %s", error)
    wait = 0.0
    while True:
        if conn.poll(wait):
            try:
                method, argument = conn.recv()
            except EOFError:  # the service has gone without closing: finish its spool
                if drainer is not None:
                    drainer.drain(timeout=60.0)
                break
            if method == "close":
                break
            conn.send(_answer(drainer, error, method, argument))
            wait = 0.0
            continue
        wait = _pause(drainer)
    if drainer is not None:
        drainer.close()
        drainer.database.close()


def _pause(drainer: Drainer | None) -> float:
    """Drain once; how long to wait for a call before the next pass [s]."""
    if drainer is None:
        return 1.0
    failures = drainer.status.failures
    if drainer.step():
        return 0.0
    return 2.0 if drainer.status.failures > failures else 0.1


#: The database's methods the service may call (with a tuple of arguments).
QUERIES = frozenset({"has_prediction", "stale_sites", "site_votes", "record_state", "site_states"})


def _answer(drainer: Drainer | None, error: str, method: str, argument: Any) -> tuple[bool, Any]:
    if drainer is None:
        return False, error
    try:
        if method == "status":
            return True, drainer.status
        if method not in QUERIES:
            return False, f"the log writer process answers no {method!r}"
        return True, getattr(drainer.database, method)(*argument)
    except LogUnavailable as exc:
        return False, str(exc)
    except Exception as exc:  # a bug, not an outage: say so, and stay up for the next call
        log.exception("prediction log: %s failed", method)
        return False, f"{type(exc).__name__} in the log writer process: {exc}"


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])), int(sys.argv[2]))
