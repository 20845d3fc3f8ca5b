"""The job interface both backends implement: hand over jobs now, or after a delay.

Jobs name a task (see :mod:`mdmserver.jobs.tasks`) and carry only plain, picklable values, so
the same job runs on an RQ worker in another process or on a thread of the web process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

PUSH_QUEUE = "push"
WEBHOOK_QUEUE = "webhooks"
PROFILE_QUEUE = "profiles"
APPS_QUEUE = "apps"  # bulk app roll-outs (mdmserver.apps.rollout)
# The order workers take them in: pushes first (a device waits on them), signing last.
QUEUES = (PUSH_QUEUE, WEBHOOK_QUEUE, APPS_QUEUE, PROFILE_QUEUE)


class BackendUnavailable(RuntimeError):
    """The job queue cannot take jobs right now (Redis down): keep them and try later."""


@dataclass(frozen=True)
class Job:
    """One call of a task: its name, arguments, queue, delay and retry-on-exception delays."""

    task: str
    args: tuple[Any, ...]
    queue: str = PUSH_QUEUE
    delay: float = 0.0
    retry: tuple[int, ...] = ()


class JobBackend(Protocol):
    name: str

    def submit(self, jobs: Sequence[Job]) -> None:
        """Hand every job over, or raise BackendUnavailable having handed over none or some."""
        ...

    def close(self) -> None: ...


def backoff(base: int, rounds: int, factor: int = 4, cap: int = 3600) -> tuple[int, ...]:
    """Retry delays: base, base*factor, ... (each at most ``cap`` seconds)."""
    return tuple(min(cap, base * factor**n) for n in range(rounds))
