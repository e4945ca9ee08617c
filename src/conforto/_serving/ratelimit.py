"""A rate per client: one token bucket each, in this process's memory."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

#: Most clients remembered; past it, those whose bucket has refilled are forgotten.
MAX_CLIENTS = 10_000


class TokenBuckets:
    """At most ``per_minute`` calls a minute for each client, in bursts of up to as many.

    Parameters
    ----------
    per_minute
        Calls a client may make in a minute [1/min].
    clock
        Monotonic time [s] (a test's own clock).

    Examples
    --------
    >>> now = [0.0]
    >>> buckets = TokenBuckets(2, clock=lambda: now[0])
    >>> [buckets.take("a"), buckets.take("a"), buckets.take("a"), buckets.take("b")]
    [0.0, 0.0, 30.0, 0.0]
    >>> now[0] = 30.0
    >>> buckets.take("a")
    0.0
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client → (tokens, when)
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """Spend one of ``client``'s tokens: 0 when it had one, else the wait for the next [s]."""
        with self._lock:
            now = self.clock()
            tokens, when = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - when) * self.rate)
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                return (1.0 - tokens) / self.rate
            self._buckets[client] = (tokens - 1.0, now)
            if len(self._buckets) > MAX_CLIENTS:
                self._forget(now)
            return 0.0

    def _forget(self, now: float) -> None:
        """Drop the clients whose bucket is full again (they are as if never seen)."""
        full = [
            client
            for client, (tokens, when) in self._buckets.items()
            if tokens + (now - when) * self.rate >= self.capacity
        ]
        for client in full:
            del self._buckets[client]
