"""The prediction log's database, in a child process of its own.

Building a row for SQLAlchemy (bind processing, JSON, datetimes) costs about 20 µs and holds
the GIL while it runs: beside the event loop, that is throughput lost and latency spikes under
load. Across a socket, the service pays only for pickling the queued rows (about 2 µs a row).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from contextlib import suppress
from multiprocessing.connection import Connection
from typing import Any

from conforto.errors import ConfigError, LogUnavailable
from conforto.serving.predlog import LogSink, Queued

log = logging.getLogger(__name__)


class LogProcess:
    """A :class:`~conforto.serving.logdb.LogDatabase` in a child process, called through a socket.

    Same methods as the database (``write``, ``has_prediction``, ``closing``, ``close``), so a
    :class:`~conforto.serving.predlog.PredictionLog` takes either. The child runs at the lowest
    CPU priority: when the service needs the whole CPU, the log's rows wait in the buffer and
    are written once there is CPU to spare. It is started again when it has died; a bad URL or
    a missing driver is reported by every call until the settings are fixed.

    Parameters
    ----------
    url
        SQLAlchemy database URL.
    timeout
        Longest wait for the child to answer one call [s]; past it the child is killed and the
        call fails (its rows stay buffered and are retried).
    niceness
        How much lower the child's priority is (``os.nice``; 19 is the lowest).
    """

    def __init__(self, url: str, *, timeout: float = 60.0, niceness: int = 19) -> None:
        self.url = url
        self.timeout = timeout
        self.niceness = niceness
        self._lock = threading.Lock()  # one call on the pipe at a time
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None

    def start(self) -> LogProcess:
        """Start the child now rather than on the first call (it then loads its database
        driver while the service starts, at low priority)."""
        with self._lock:
            self._connection()
        return self

    @property
    def pid(self) -> int | None:
        """The child's process id (None before the first call)."""
        return self._process.pid if self._process is not None else None

    def write(self, batch: Sequence[Queued]) -> None:
        """Store the rows in one transaction (see :meth:`LogDatabase.write`)."""
        self._call("write", list(batch))

    def has_prediction(self, prediction_id: str) -> bool:
        """Whether a prediction is stored (see :meth:`LogDatabase.has_prediction`)."""
        return bool(self._call("has_prediction", prediction_id))

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
                self._process = subprocess.Popen(  # noqa: S603 - fixed command
                    [sys.executable, "-m", __name__, str(theirs.fileno()), str(self.niceness)],
                    pass_fds=[theirs.fileno()],
                )
            self._conn = Connection(ours.detach())
            self._conn.send(self.url)
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

    def closing(self) -> LogSink:
        """Stop the child; the final flush goes through this process's own connection.

        At shutdown no request waits for the CPU, and the child, at the lowest priority,
        would be the last to get it: on a busy machine the buffer would outlast the grace
        period.
        """
        from conforto.serving.logdb import LogDatabase  # SQLAlchemy, only at shutdown

        self.close()
        try:
            return LogDatabase(self.url)
        except ConfigError:
            return self  # a new child says why at every try, as before

    def close(self) -> None:
        """Ask the child to close its connections and exit."""
        with self._lock:
            self._end(kill=False)


def serve(conn: Connection, niceness: int) -> None:
    """The child's loop: read the database URL, then answer ``(method, argument)`` calls with
    ``(ok, value)`` until told to close or the service is gone.

    Parameters
    ----------
    conn
        The child's end of the socket.
    niceness
        Added to the child's scheduling niceness.
    """
    os.nice(niceness)  # first: loading the database driver can wait too
    from conforto.serving.logdb import LogDatabase

    url = conn.recv()
    database: LogDatabase | None = None
    try:
        database = LogDatabase(url)
        error = ""
    except ConfigError as exc:
        error = str(exc)
        log.error("prediction log: %s", error)
    while True:
        try:
            method, argument = conn.recv()
        except EOFError:  # the service has gone without closing
            break
        if method == "close":
            break
        if database is None:
            conn.send((False, error))
            continue
        try:
            conn.send((True, getattr(database, method)(argument)))
        except LogUnavailable as exc:
            conn.send((False, str(exc)))
        except Exception as exc:  # a bug, not an outage: say so, and stay up for the next call
            log.exception("prediction log: %s failed", method)
            conn.send((False, f"{type(exc).__name__} in the log writer process: {exc}"))
    if database is not None:
        database.close()


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])), int(sys.argv[2]))
