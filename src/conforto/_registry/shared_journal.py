"""The lifecycle's journal kept in the registry store itself: with a tracking server, every
machine that has its URI shares one history and one lease.

Each lease is a record of the store (on MLflow, a registered model of its own) named
``<model>.moves.<n>`` (``n`` zero-padded, counting from 1), whose tags hold who took it and until
when (``owner``; ``expires``, Unix time [s]), its ``state`` (``open``, then ``closed``), the move
it is about to make (``intent``) and the moves it made (``move.1``, ``move.2``: JSON). The audit
log is every record's moves, in order.

Why it is safe: creating a record is atomic on the server and fails when the name exists (MLflow
answers ``RESOURCE_ALREADY_EXISTS``), so of the commands that read ``n`` as the newest record,
exactly one creates ``n + 1``; the others are told who won, and change nothing. Nobody takes a
lease while the newest record is open and unexpired. The holder checks, before each write, that
its own lease has not expired (a move is a few seconds of work; a lease lasts minutes), so a
record taken over after its expiry belongs to a command that died or stalled, and the next
holder completes or abandons its intent by what the alias says. The machines' clocks must agree
to within the lease's length.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

from conforto._lineage import current_user
from conforto._registry.audit import Move
from conforto._registry.store import clip_tag
from conforto.errors import RegistryBusy, RegistryError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conforto._registry.store import RegistryStore

#: Digits of a record's number (names sort in order; more digits past a million records).
DIGITS = 6
#: A record: its name and tags.
Record = tuple[str, dict[str, str]]


class SharedJournal:
    """The journal as records ``<model>.moves.<n>`` of the registry store.

    Parameters
    ----------
    store
        The registry store (an MLflow server, in practice).
    lease_s
        How long a lease lasts [s] before another machine may complete its move.
    """

    def __init__(self, store: RegistryStore, lease_s: float) -> None:
        self.store = store
        self.prefix = f"{store.model_name}.moves."
        self.lease_s = lease_s
        self.owner = f"{current_user()}@{socket.gethostname()} pid {os.getpid()}"
        self._held: str | None = None
        self._expires = 0.0
        self._made = 0  # moves recorded under the lease held
        self._found: str | None = None  # the interrupted record :meth:`interrupted` found

    def _records(self) -> list[Record]:
        """Every record, oldest first."""
        found = self.store.records(self.prefix).items()
        numbered = [(n, t) for n, t in found if n[len(self.prefix) :].isdigit()]
        return sorted(numbered, key=lambda record: int(record[0][len(self.prefix) :]))

    @staticmethod
    def _live(record: Record) -> bool:
        """Open and unexpired: its holder may be at work."""
        tags = record[1]
        return tags.get("state") == "open" and float(tags.get("expires", 0)) > time.time()

    @staticmethod
    def _who(record: Record) -> str:
        tags = record[1]
        intent = Move.from_json(json.loads(tags["intent"])) if "intent" in tags else None
        doing = f" ({intent.describe()})" if intent else ""
        until = time.strftime("%H:%M:%S %Z", time.localtime(float(tags.get("expires", 0))))
        return f"{tags.get('owner', 'another command')}{doing}, lease until {until}"

    @contextmanager
    def lease(self) -> Iterator[None]:
        """Create the next record (atomically); it is closed when the block ends.

        Raises
        ------
        RegistryBusy
            When another command holds an unexpired lease, or created the same record first.
        AccessRefused
            When the account may not move the model's versions: refused by the model itself
            (its ``lease`` tag names the last taker), before any record is made.
        """
        self.store.set_model_tag("lease", self.owner)
        records = self._records()
        if records and self._live(records[-1]):
            raise RegistryBusy(
                f"another command is moving production: {self._who(records[-1])}; "
                "run this one again when it has finished."
            )
        number = int(records[-1][0][len(self.prefix) :]) + 1 if records else 1
        name, expires = f"{self.prefix}{number:0{DIGITS}d}", time.time() + self.lease_s
        tags = {"owner": self.owner, "expires": f"{expires:.3f}", "state": "open"}
        if not self.store.create_record(name, tags):
            winner = (name, self.store.records(name).get(name, {}))
            raise RegistryBusy(
                f"another command took lease {number} at the same moment ({self._who(winner)}): "
                "production may have changed; see `conforto model audit`, then run this one again."
            )
        self._held, self._expires, self._made = name, expires, 0
        try:
            yield
        except BaseException:
            # left open, its lease ended now: the next command completes or abandons the intent
            with contextlib.suppress(Exception):
                self.store.set_record_tag(name, "expires", str(int(time.time())))
            raise
        else:
            self.store.set_record_tag(name, "state", "closed")
        finally:
            self._held = None

    def _holding(self) -> str:
        """The record held; :class:`RegistryError` when its lease has expired meanwhile."""
        if self._held is None:
            raise RegistryError("the registry's journal is written only under its lease.")
        if time.time() >= self._expires:
            raise RegistryError(
                f"the lease {self._held} expired before this command finished: run it again "
                "(a longer lease: CONFORTO_TRACKING__LEASE_S)."
            )
        return self._held

    def busy(self) -> str | None:
        """Who holds an unexpired lease, other than this journal."""
        records = self._records()
        if not records or records[-1][0] == self._held or not self._live(records[-1]):
            return None
        return self._who(records[-1])

    def moves(self) -> list[Move]:
        """Every record's moves, in order."""
        return [move for record in self._records() for move in _moves(record)]

    def record(self, move: Move) -> None:
        """Add a move to the record held."""
        name = self._holding()
        self.store.set_record_tag(name, f"move.{self._made + 1}", _dump(move))
        self._made += 1

    def intend(self, move: Move) -> None:
        """Write the move about to be made on the record held."""
        self.store.set_record_tag(self._holding(), "intent", _dump(move))

    def _interrupted(self) -> Record | None:
        """The newest record other than the one held, when it was left open with an intent it
        never recorded as a move.
        """
        others = [r for r in self._records() if r[0] != self._held]
        if not others or others[-1][1].get("state") != "open" or "intent" not in others[-1][1]:
            return None
        intent = Move.from_json(json.loads(others[-1][1]["intent"]))
        made = [(m.action, m.to) for m in _moves(others[-1])]
        return None if (intent.action, intent.to) in made else others[-1]

    def interrupted(self) -> Move | None:
        """The intent of a command that was interrupted (its record open, the move unrecorded)."""
        record = self._interrupted()
        self._found = None if record is None else record[0]
        return None if record is None else Move.from_json(json.loads(record[1]["intent"]))

    def settle(self) -> None:
        """Mark the interrupted record :meth:`interrupted` found ``interrupted``: no longer open
        (the move just made needs nothing: its own record is closed with the lease).
        """
        if self._found is not None:
            self.store.set_record_tag(self._found, "state", "interrupted")
            self._found = None


def _moves(record: Record) -> list[Move]:
    """A record's moves, in order."""
    keys = sorted((k for k in record[1] if k.startswith("move.")), key=lambda k: int(k[5:]))
    return [Move.from_json(json.loads(record[1][k])) for k in keys]


def _dump(move: Move) -> str:
    """A move as a tag's value (its reason clipped to fit)."""
    data = move.to_json()
    data["reason"] = clip_tag(data["reason"])
    return json.dumps(data)
