"""Prediction ids: time-ordered UUIDs (version 7, RFC 9562), as 32 lowercase hex characters.

The first 48 bits are the issuing time in milliseconds, so any process can tell how old an id
is without asking the database: a vote for a young id whose prediction has not landed yet is
pending, not unknown. The other 74 bits are random (``os.urandom``), as unguessable as a
version 4 UUID's 122 minus the time.
"""

from __future__ import annotations

import os
import time

_VERSION = 0x7 << 76
_VARIANT = 0b10 << 62
_RAND_A = 0xFFF  # 12 bits beside the version
_RAND_B = (1 << 62) - 1  # 62 bits beside the variant


def new_ids(count: int, now: float | None = None) -> list[str]:
    """``count`` fresh prediction ids.

    Parameters
    ----------
    count
        How many.
    now
        Issuing time [s since the epoch]; the current time by default.

    Examples
    --------
    >>> first, second = new_ids(2, now=1_700_000_000.0)
    >>> len(first), first[12], first != second
    (32, '7', True)
    >>> issued_at(first)
    1700000000.0
    """
    ms = int((time.time() if now is None else now) * 1000) << 80
    noise = os.urandom(10 * count)
    ids = []
    for i in range(count):
        bits = int.from_bytes(noise[10 * i : 10 * i + 10], "big")
        value = ms | _VERSION | ((bits >> 62) & _RAND_A) << 64 | _VARIANT | (bits & _RAND_B)
        ids.append(f"{value:032x}")
    return ids


def issued_at(prediction_id: str) -> float | None:
    """When a prediction id was issued [s since the epoch]; ``None`` for an id that is not a
    version 7 UUID (ids issued before conforto used them are version 4).
    """
    if len(prediction_id) != 32 or prediction_id[12] != "7":
        return None
    try:
        return int(prediction_id[:12], 16) / 1000.0
    except ValueError:
        return None
