"""A challenger beside production: A/B tests of models in the service.

Two modes (``CONFORTO_SERVE__CHALLENGER__MODE``, or ``POST /admin/challenger``):

* **shadow**: production answers every request. After each of production's micro-batches the
  challenger scores the same rows in a thread of its own, off the response path; its classes
  and probabilities go to the prediction log beside production's (``shadow_predictions``).
  When more than ``shadow_backlog`` rows wait for it, further batches are skipped (and counted):
  a slow challenger never holds an answer back.
* **canary**: the challenger answers ``canary_percent`` % of the clients, picked by a hash of
  the ``X-Client-Id`` header (else the client's address) keyed by the challenger's version, so
  a client stays on one model while the challenger runs. A canary that fails hands the
  request to production.

The **automatic stop** judges the challenger's last ``window`` predictions: a share of failures
above ``max_error_rate``, a p99 latency above ``max_p99_ms`` or, in shadow, a share of classes
unlike production's above ``max_disagreement`` takes it out of the path (see
:class:`~conforto._serving.challenger_slot.ChallengerSlot`, which also loads, starts and
replaces challengers).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from conforto._data.target import CLASS_NAMES
from conforto._model.inputs import Observation
from conforto._notify import Message, context, fields, header, section
from conforto._predictions.records import ShadowRow
from conforto._serving import telemetry
from conforto._serving.runtime import AfterBatch, Asked, MicroBatcher, Predictor
from conforto._serving.schemas import ChallengerStatus

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from conforto._predictions.answer import Prediction
    from conforto._predictions.log import PredictionLog
    from conforto._settings import ChallengerSettings

log = logging.getLogger(__name__)
Mode = Literal["shadow", "canary"]
#: How long a shadow lets production's batches gather before it scores them [s].
LINGER = 0.02
#: Buckets of the canary's client hash (a share is set to 0.01 %).
BUCKETS = 10_000


#: A batch waiting for the shadow: its rows, production's (id, class) of each, and the matrix
#: production scored them from when the shadow can reuse it.
Queued = tuple[list[Observation], list[tuple[str, str]], "np.ndarray | None"]


class Window:
    """The challenger's last predictions: whether each failed, its latency and (shadow) whether
    it disagreed with production. Fed from worker threads.

    Parameters
    ----------
    size
        Predictions remembered.
    """

    def __init__(self, size: int) -> None:
        self._failed: deque[bool] = deque(maxlen=size)
        self._latency: deque[float] = deque(maxlen=size)
        self._disagreed: deque[bool] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(
        self, failed: Iterable[bool], latencies_ms: Iterable[float], disagreed: Iterable[bool] = ()
    ) -> None:
        """Remember some predictions (latencies in ms)."""
        with self._lock:
            self._failed.extend(failed)
            self._latency.extend(latencies_ms)
            self._disagreed.extend(disagreed)

    def figures(self) -> dict[str, float]:
        """``predictions``, ``error_rate``, ``p99_ms`` and ``disagreement`` (NaN: not known)."""
        with self._lock:
            failed, latency, disagreed = list(self._failed), list(self._latency), self._disagreed
            compared = list(disagreed)
        return {
            "predictions": float(len(failed)),
            "error_rate": float(np.mean(failed)) if failed else float("nan"),
            "p99_ms": float(np.percentile(latency, 99)) if latency else float("nan"),
            "disagreement": float(np.mean(compared)) if compared else float("nan"),
        }

    def breach(
        self, limits: ChallengerSettings, found: dict[str, float] | None = None
    ) -> tuple[str, str] | None:
        """The first limit crossed, as ``(kind, reason)``; ``None`` while within them or before
        ``limits.min_predictions`` predictions. ``found``: :meth:`figures`, when just read.
        """
        found = found or self.figures()
        n = int(found["predictions"])
        if n < limits.min_predictions:
            return None
        over = f"over the last {n} predictions"
        if found["error_rate"] > limits.max_error_rate:
            return "error_rate", (
                f"error rate {found['error_rate']:.1%} {over} (limit {limits.max_error_rate:.1%})"
            )
        if found["p99_ms"] > limits.max_p99_ms:
            return "latency", (
                f"p99 latency {found['p99_ms']:.1f} ms {over} (limit {limits.max_p99_ms:g} ms)"
            )
        if found["disagreement"] > limits.max_disagreement:
            return "disagreement", (
                f"disagreement with production {found['disagreement']:.1%} {over} "
                f"(limit {limits.max_disagreement:.1%})"
            )
        return None


class Challenger:
    """A second model in the service, in shadow or canary (module docstring).

    Parameters
    ----------
    predictor
        The challenger's predictor.
    limits
        Its settings: window, thresholds, the shadow's backlog.
    mode, percent
        Shadow or canary, and the canary's share of clients [%].
    log
        Where the shadow's answers are spooled (``None``: nowhere).
    answered
        Called with every batch the canary answered (the service logs and counts it).
    on_stop
        Called once, from a worker thread, when the automatic stop fires: ``(challenger, kind,
        reason)``.
    """

    def __init__(
        self,
        predictor: Predictor,
        limits: ChallengerSettings,
        *,
        mode: Mode,
        percent: float,
        log: PredictionLog | None,
        answered: AfterBatch,
        on_stop: Callable[[Challenger, str, str], None],
    ) -> None:
        self.predictor = predictor
        self.version = predictor.version
        self.limits = limits
        self.mode: Mode = mode
        self.percent = percent
        self.log = log
        self.window = Window(limits.window)
        self.started = time.time()
        self.stopped: str | None = None
        self.shadowed = 0
        self.skipped = 0
        self._answered = answered
        self._on_stop = on_stop
        self._key = hashlib.blake2b(self.version.encode()).digest()[:32]
        self._waiting = 0
        self._queue: list[Queued] = []
        self._draining = False
        self._compared: object = None
        self._reuses = False
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conforto-shadow")
        self.batcher = MicroBatcher(predictor, after=self.canary_answered)

    @property
    def running(self) -> bool:
        """Whether it is still in the path (not stopped)."""
        return self.stopped is None

    def answers(self, client: str) -> bool:
        """Whether the canary answers this client (always the same for one client)."""
        if self.mode != "canary" or not self.running:
            return False
        digest = hashlib.blake2b(client.encode(), key=self._key, digest_size=8).digest()
        return int.from_bytes(digest, "big") % BUCKETS < self.percent * (BUCKETS / 100)

    # ----------------------------------------------------------------------------------- shadow

    def shadow(
        self,
        rows: Sequence[Observation],
        results: Sequence[Prediction],
        encoded: tuple[Sequence[Any], np.ndarray] | None = None,
    ) -> None:
        """Queue the rows production just answered for the shadow (returns at once).

        ``encoded``: production's features and the model matrix it scored the rows from; a
        challenger with the same features scores that matrix instead of encoding the rows
        again (most of a prediction's work).
        """
        if self.mode != "shadow" or not self.running:
            return
        answered: list[tuple[str, str]] = [(r.prediction_id, r.predicted_class) for r in results]
        matrix = None
        if encoded is not None:
            features, encoding = encoded
            if features is not self._compared:  # production's are one object until a reload
                self._compared, self._reuses = features, features == self.predictor.features
            matrix = encoding if self._reuses else None
        with self._lock:
            if self._waiting + len(rows) > self.limits.shadow_backlog:
                self.skipped += len(rows)
                telemetry.SHADOW_SKIPPED.inc(len(rows))
                return
            self._waiting += len(rows)
            self._queue.append((list(rows), answered, matrix))
            if self._draining:
                return
            self._draining = True
        self._pool.submit(self._drain)

    def _drain(self) -> None:
        """Score whatever has queued up in one call until nothing is left, each time after
        :data:`LINGER`: a shadow's batches then grow with the load, and its per-call costs
        (the booster's call, the window's judgement, the log's write) are shared.
        """
        while True:
            time.sleep(LINGER)
            with self._lock:
                if not self._queue or not self.running:  # a stopped shadow scores no more
                    self._draining = False
                    self._queue, self._waiting = [], 0
                    return
                queued, self._queue = self._queue, []
            rows = [row for batch, _, _ in queued for row in batch]
            answered = [pair for _, pairs, _ in queued for pair in pairs]
            matrices = [matrix for _, _, matrix in queued if matrix is not None]
            reused = np.concatenate(matrices) if len(matrices) == len(queued) else None
            try:
                self._score_shadow(rows, answered, reused)
            except Exception:  # the pool would swallow it silently
                log.exception("shadow %s: its answers were not recorded", self.version)
            finally:
                with self._lock:
                    self._waiting -= len(rows)

    def _score_shadow(
        self, rows: list[Observation], answered: list[tuple[str, str]], matrix: Any
    ) -> None:
        """Score the rows, log the answers beside production's, judge them in the window."""
        start, n = time.perf_counter(), len(answered)
        try:
            decided, proba = self.predictor.classify(rows, matrix)
        except Exception as exc:  # a failing challenger is judged, never fatal
            log.warning("shadow %s failed: %s: %s", self.version, type(exc).__name__, exc)
            latency = (time.perf_counter() - start) * 1000.0
            now, error = time.time(), type(exc).__name__[:64]
            failure = (None, None, None, None, latency, error)
            entries = [ShadowRow(pid, now, self.version, *failure) for pid, _ in answered]
            disagreed: list[bool] = []
            failed = True
            telemetry.CHALLENGER_FAILURES.labels("shadow").inc(n)
        else:
            latency = (time.perf_counter() - start) * 1000.0
            classes = [CLASS_NAMES[k] for k in decided.tolist()]
            now = time.time()
            entries = [
                ShadowRow(pid, now, self.version, c, cool, neutral, warm, latency)
                for (pid, _), c, (cool, neutral, warm) in zip(
                    answered, classes, proba.tolist(), strict=True
                )
            ]
            disagreed = [c != a for (_, a), c in zip(answered, classes, strict=True)]
            failed = False
        if self.log is not None:
            self.log.add_shadow(entries)
        telemetry.MODEL_PREDICTIONS.labels("shadow", self.version).inc(n)
        telemetry.MODEL_LATENCY.labels("shadow").observe(latency / 1000.0)
        telemetry.SHADOW_COMPARED.labels(self.version).inc(len(disagreed))
        telemetry.SHADOW_AGREED.labels(self.version).inc(len(disagreed) - sum(disagreed))
        # counted before the window judges the batch: a stop is never seen without it
        self.shadowed += n
        self.observe([failed] * n, [latency] * n, disagreed)

    # ----------------------------------------------------------------------------------- canary

    def canary_answered(
        self,
        rows: list[Observation],
        contexts: list[Asked],
        results: list[Prediction],
        matrix: np.ndarray,
    ) -> None:
        """A batch the canary answered: recorded by the service, judged by the window."""
        self._answered(rows, contexts, results, matrix)
        now = time.perf_counter()
        self.observe([False] * len(rows), [(now - asked.start) * 1000.0 for asked in contexts])

    def failed(self, start: float, exc: BaseException) -> None:
        """A canary request failed (production answers it instead)."""
        log.warning("canary %s failed: %s: %s", self.version, type(exc).__name__, exc)
        telemetry.CHALLENGER_FAILURES.labels("canary").inc()
        self.observe([True], [(time.perf_counter() - start) * 1000.0])

    # ------------------------------------------------------------------------------------ stop

    def observe(
        self, failed: Sequence[bool], latencies_ms: Sequence[float], disagreed: Sequence[bool] = ()
    ) -> None:
        """Add predictions to the window; stop when a limit is crossed."""
        self.window.add(failed, latencies_ms, disagreed)
        figures = self.window.figures()
        for name, value in figures.items():
            telemetry.CHALLENGER_WINDOW.labels(name).set(value)
        breach = self.window.breach(self.limits, figures) if self.running else None
        if breach is not None:
            with self._lock:
                if not self.running:
                    return
                self.stopped = breach[1]
            self._on_stop(self, *breach)

    def status(self) -> ChallengerStatus:
        """What ``/admin/challenger`` reports."""
        return ChallengerStatus(
            version=self.version,
            mode=self.mode,
            canary_percent=self.percent if self.mode == "canary" else None,
            state="running" if self.running else "stopped",
            stopped_because=self.stopped,
            started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            shadowed=self.shadowed,
            skipped=self.skipped,
            window={k: None if np.isnan(v) else v for k, v in self.window.figures().items()},
        )

    def close(self) -> None:
        """Stop its threads (a shadow batch being scored finishes in the background)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.batcher.close()


def challenger_message(version: str, mode: str, reason: str, figures: dict[str, float]) -> Message:
    """The service took a challenger out of the path (its automatic stop)."""
    pairs = {k: f"{v:.3g}" for k, v in figures.items() if isinstance(v, int | float)}
    blocks = [
        header(f"Challenger {version} ({mode}) stopped"),
        section(reason),
        fields(pairs),
        context("production answers every request; POST /admin/challenger starts another"),
    ]
    return Message("challenger", f":octagonal_sign: conforto challenger {version} stopped", blocks)
