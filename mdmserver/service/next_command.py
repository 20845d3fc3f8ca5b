""" "What to send next" as an ordered list of small steps; the first that has a command wins.

Today the only step is the durable queue. Later steps (profile reconciliation, inventory
refresh, identity renewal) slot in here without touching the command loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mdmserver.storage.base import NextCommand
from mdmserver.storage.ports import QueuePort


@dataclass(frozen=True, slots=True)
class Session:
    enrollment_id: str
    new_session: bool  # an Idle starts a session; results continue it


Step = Callable[[Session], NextCommand | None]


def queued_command(storage: QueuePort) -> Step:
    def step(session: Session) -> NextCommand | None:
        return storage.next_command(session.enrollment_id, new_session=session.new_session)

    return step


def choose_next(steps: Sequence[Step], session: Session) -> NextCommand | None:
    for step in steps:
        command = step(session)
        if command is not None:
            return command
    return None
