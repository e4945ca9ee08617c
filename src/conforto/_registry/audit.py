"""The registry's audit log: every move of a model version, one JSON line each, append-only.

Production moves (promotions, rollbacks, reconciliations) make the production history; other
moves (``upgrade``) are recorded beside them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conforto._lineage import current_user, timestamp
from conforto._notify import Message, context, fields, header

if TYPE_CHECKING:
    from pathlib import Path

AUDIT = "audit.jsonl"
#: Actions that change production (others, like ``upgrade``, record other moves).
PRODUCTION_ACTIONS = ("promote", "rollback", "reconcile")


@dataclass
class Move:
    """One move of a version (a change of production, or an upgrade), as written to the audit
    log.
    """

    action: str
    to: str
    previous: str | None
    reason: str
    command: str
    time: str = ""
    user: str = ""

    def describe(self) -> str:
        """The move in words, e.g. ``promote version 3 (from 2)``."""
        since = f" (from {self.previous})" if self.previous else ""
        return f"{self.action} version {self.to}{since}"

    def to_json(self) -> dict[str, Any]:
        """The audit-log record."""
        return {
            "time": self.time or timestamp(),
            "action": self.action,
            "from": self.previous,
            "to": self.to,
            "reason": self.reason,
            "command": self.command,
            "user": self.user or current_user(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Move:
        """Inverse of :meth:`to_json`."""
        return cls(
            data["action"],
            str(data["to"]),
            data.get("from"),
            data.get("reason", ""),
            data.get("command", ""),
            data.get("time", ""),
            data.get("user", ""),
        )


def read_audit(path: Path) -> list[Move]:
    """Every move in the audit log at ``path``, oldest first (none when it does not exist)."""
    if not path.is_file():
        return []
    moves = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                moves.append(Move.from_json(json.loads(line)))
            except (json.JSONDecodeError, KeyError):
                continue  # a line torn by a crash mid-append carries no completed move
    return moves


def append_move(path: Path, move: Move) -> None:
    """Append ``move`` to the audit log at ``path``, on disk when this returns."""
    with open(path, "a") as handle:
        handle.write(json.dumps(move.to_json()) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def production_history(moves: list[Move]) -> list[str]:
    """Production versions as a stack: promotions push, rollbacks pop; other moves are skipped."""
    stack: list[str] = []
    for move in moves:
        if move.action not in PRODUCTION_ACTIONS:
            continue
        if move.action == "rollback" and len(stack) >= 2 and stack[-2] == move.to:
            stack.pop()
        elif not stack or stack[-1] != move.to:
            stack.append(move.to)
    return stack


def move_message(move: Move) -> Message:
    """A promotion or a rollback: who, why, from which version to which."""
    action = "rolled back" if move.action == "rollback" else "promoted"
    record = move.to_json()
    blocks = [
        header(f"Production {action}: version {record['from'] or '-'} → {record['to']}"),
        fields(
            {
                "from": str(record["from"] or "-"),
                "to": str(record["to"]),
                "who": record["user"],
                "why": move.reason or "-",
            }
        ),
        context(f"{record['time']} · `{move.command}`"),
    ]
    text = f"conforto production {action}: {record['from'] or '-'} → {record['to']} ({move.reason})"
    return Message(move.action, text, blocks)
