"""The prediction log, as the service sees it: spooled before the answer, stored behind it.

A micro-batch's predictions are appended to this process's spool (:mod:`.spool`) with one
``os.write`` before their responses are sent: from then on a crash of the process loses none
of them. A writer process (:mod:`.writer`, running :mod:`.drain`) stores the spool in the
database, exactly once, and reports what it did; this module reads that into the service's
counters. When the database is down, predictions are still answered and the spool grows on
disk, up to a bound. This module imports no database code.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from conforto._predictions.ids import issued_at
from conforto._predictions.records import (
    EventRow,
    InputValue,
    Kind,
    PredictionRow,
    ShadowRow,
    VoteRow,
)
from conforto.errors import LogUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from conforto._predictions.answer import Prediction
    from conforto._predictions.drain import DrainStatus
    from conforto._predictions.spool import Spool

log = logging.getLogger(__name__)


class LogStore(Protocol):
    """The database side, as the service sees it (:class:`~.writer.LogProcess`)."""

    def has_prediction(self, prediction_id: str) -> bool:
        """Whether a prediction is stored; :class:`LogUnavailable` when it cannot be told."""

    def status(self) -> DrainStatus:
        """What the writer has done since it started."""

    def close(self, timeout: float) -> bool:
        """Stop writing in the background; store what is left for up to ``timeout`` s (what is
        not stays in the spool for the next start). Whether everything was stored.
        """


@dataclass
class LogCounters:
    """Callbacks the log reports through (the service turns them into Prometheus metrics)."""

    written: Callable[[str, int], None] = lambda _table, _rows: None
    failed: Callable[[int], None] = lambda _failures: None
    dropped: Callable[[int], None] = lambda _rows: None
    orphaned: Callable[[int], None] = lambda _votes: None
    backlog: Callable[[int], None] = lambda _size: None


class RecentIds:
    """The ids this process spooled lately: durable already, though maybe not stored yet.

    Parameters
    ----------
    capacity
        Most ids remembered (the oldest are forgotten first).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._order: deque[str] = deque()
        self._ids: set[str] = set()

    def add(self, ids: Sequence[str]) -> None:
        """Remember ``ids``."""
        self._order.extend(ids)
        self._ids.update(ids)
        while len(self._order) > self.capacity:
            self._ids.discard(self._order.popleft())

    def __contains__(self, prediction_id: object) -> bool:
        """Whether the id was answered here lately."""
        return prediction_id in self._ids


#: What the log knows of a prediction id: stored (or durable in this process's spool),
#: pending (young enough to be on its way from another process), or unknown.
Lookup = Literal["stored", "pending", "unknown"]


class PredictionLog:
    """Predictions and votes, spooled before the answer and stored in the background.

    Parameters
    ----------
    spool
        This process's spool (rows are on disk when ``add_*`` returns).
    store
        The database side: lookups, the writer's status, the final drain.
    horizon
        How long an unknown time-ordered id may still be on its way [s] (see :meth:`lookup`).
    recent
        How many of this process's own ids to remember for lookups [ids].
    interval
        How often the writer's status is read into the counters [s].
    counters
        Where writes, failures, drops, orphaned votes and the backlog are reported.
    """

    def __init__(
        self,
        spool: Spool,
        store: LogStore,
        *,
        horizon: float = 600.0,
        recent: int = 50_000,
        interval: float = 1.0,
        counters: LogCounters | None = None,
    ) -> None:
        self.spool = spool
        self.store = store
        self.horizon = horizon
        self.interval = interval
        self.counters = counters or LogCounters()
        self.recent = RecentIds(recent)
        self.dropped = 0
        self._seen: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="conforto-predlog", daemon=True)
        spool.dropped = self._dropped

    def start(self) -> PredictionLog:
        """Start reading the writer's status into the counters."""
        self._thread.start()
        return self

    def _dropped(self, rows: int) -> None:
        self.dropped += rows
        self.counters.dropped(rows)

    def add_predictions(
        self,
        results: Sequence[Prediction],
        inputs: Sequence[Mapping[str, InputValue]],
        latencies_ms: Sequence[float],
        sites: Sequence[str | None],
        kinds: Sequence[Kind],
        arm: str | None = None,
    ) -> bool:
        """Spool predictions (with the inputs given, the latency [ms], the site of each and
        who asked; ``arm`` ``canary`` when a challenger answered them) in one write; False when
        the disk refused them.
        """
        now = time.time()
        rows = [
            PredictionRow.of(result, given, latency, site, now=now, arm=arm, kind=kind)
            for result, given, latency, site, kind in zip(
                results, inputs, latencies_ms, sites, kinds, strict=True
            )
        ]
        if not self.spool.append(rows):
            return False
        self.recent.add([r.prediction_id for r in results])
        return True

    def add_shadow(self, rows: Sequence[ShadowRow]) -> bool:
        """Spool a shadow challenger's answers; False when the disk refused them."""
        return self.spool.append(rows)

    def add_event(self, version: str, mode: str, event: str, reason: str = "") -> bool:
        """Spool a challenger's start, removal or automatic stop (:class:`EventRow`)."""
        return self.spool.append([EventRow(time.time(), version, mode, event, reason)])

    def add_feedback(
        self, prediction_id: str, thermal_sensation: float, client: str | None = None
    ) -> bool:
        """Spool an occupant's vote for a prediction (sent by ``client``); False when the
        disk refused it.
        """
        row = VoteRow(prediction_id, thermal_sensation, time.time(), client)
        return self.spool.append([row])

    def lookup(self, prediction_id: str) -> Lookup:
        """What the log knows of a prediction id.

        ``stored`` when this process spooled it or the database holds it; otherwise
        ``pending`` when the id is time-ordered and younger than ``horizon`` (answered by
        another process whose rows have not landed yet), else ``unknown``.

        Raises
        ------
        LogUnavailable
            When only the database could tell and it cannot be asked.
        """
        if prediction_id in self.recent:
            return "stored"
        issued = issued_at(prediction_id)
        young = issued is not None and -60.0 <= time.time() - issued <= self.horizon
        try:
            if self.store.has_prediction(prediction_id):
                return "stored"
        except LogUnavailable:
            if not young:
                raise
        return "pending" if young else "unknown"

    def _report(self) -> None:
        """Turn the writer's cumulative status into counter increments (a restarted writer
        starts again from zero).
        """
        status = self.store.status()
        for key, now, report in (
            ("predictions", status.predictions, lambda n: self.counters.written("predictions", n)),
            ("feedback", status.feedback, lambda n: self.counters.written("feedback", n)),
            ("failures", status.failures, self.counters.failed),
            ("dropped", status.dropped, self.counters.dropped),
            ("orphaned", status.orphaned, self.counters.orphaned),
        ):
            before = self._seen.get(key, 0)
            if now != before:
                report(now - before if now > before else now)
            self._seen[key] = now
        self.counters.backlog(status.backlog_bytes)

    def _run(self) -> None:
        # This thread's calls are also what restarts a dead writer: it must outlive any failure.
        while not self._stop.wait(self.interval):
            try:
                self._report()
            except LogUnavailable as exc:
                log.warning("prediction log: the writer's status is unknown: %s", exc)
            except Exception:
                log.exception("prediction log: reading the writer's status failed; retrying")

    def close(self, timeout: float = 10.0) -> bool:
        """Stop spooling, then store what is left for up to ``timeout`` s.

        Returns
        -------
        bool
            Whether everything was stored (what was not waits in the spool for the next
            start: nothing is lost).
        """
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.spool.close()
        done = self.store.close(timeout)
        if not done:
            log.error(
                "prediction log: rows wait in the spool %s for the next start",
                self.spool.directory,
            )
        return done
