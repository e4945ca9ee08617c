"""Fault injection for the crash tests: a lifecycle command killed at a named checkpoint."""

from __future__ import annotations

import os
import signal

from conforto._settings import get_settings


def checkpoint(name: str) -> None:
    """Kill this process with SIGKILL here when ``CONFORTO_CRASH_AT`` is ``name``."""
    if get_settings().crash_at == name:
        os.kill(os.getpid(), signal.SIGKILL)
