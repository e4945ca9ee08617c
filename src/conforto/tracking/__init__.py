"""Experiment tracking behind one small protocol.

Stages talk to a :class:`Tracker`; :class:`NullTracker` records nothing, and
:class:`GuardedTracker` wraps any tracker so that its failures become warnings: a stage never
fails because a tracking server is unavailable.
"""

from conforto.tracking.base import GuardedTracker, NullTracker, Tracker, tracked_run

__all__ = ["GuardedTracker", "NullTracker", "Tracker", "tracked_run"]
