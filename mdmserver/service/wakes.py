"""Pushes for the commands the server queues itself, as prompt as an admin's.

Inventory on enrollment, profile installs, identity renewals and remediation queue commands
through the storage. :class:`WakingStorage` wraps it so every such ``enqueue`` is followed by
a push request (``Pusher.request_push``: the durable outbox, then the dispatcher), instead of
waiting for the periodic scan. Within one unit of work (a device request, a maintenance run)
requests are collected and written once at its end, after the commands are committed, so six
inventory commands cost one outbox write, not six.

On the command loop (``/mdm/connect``) the requesting enrollment itself is left out: it is in a
session and gets what was just queued for it in this very response or the next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from mdmserver.protocol.checkin import CheckinMessage
from mdmserver.protocol.commands import Command
from mdmserver.protocol.results import CommandResult
from mdmserver.service.base import MDMService, Reply
from mdmserver.service.context import DeviceRequest
from mdmserver.storage.ports import Storage

Wake = Callable[[list[str]], object]

_collected: ContextVar[dict[str, None] | None] = ContextVar("wakes_collected", default=None)


class WakingStorage:
    """The storage, with a push request after every enqueue (see the module docstring)."""

    def __init__(self, inner: Storage, wake: Wake) -> None:
        self.inner = inner  # what the admin uses: it asks for its pushes itself
        self._wake = wake

    def enqueue(
        self,
        command: Command,
        enrollment_ids: Sequence[str],
        *,
        priority: int = 0,
        expires_at: datetime | None = None,
        created_by: str | None = None,
    ) -> int:
        queued = self.inner.enqueue(
            command,
            enrollment_ids,
            priority=priority,
            expires_at=expires_at,
            created_by=created_by,
        )
        collected = _collected.get()
        if collected is not None:
            collected.update(dict.fromkeys(enrollment_ids))
        elif enrollment_ids:
            self._wake(list(enrollment_ids))
        return queued

    @contextmanager
    def batch(self, *, skip: str | None = None) -> Iterator[None]:
        """Collect the push requests of a unit of work and write them once at its end."""
        if _collected.get() is not None:  # nested: the outer batch writes them
            yield
            return
        collected: dict[str, None] = {}
        token = _collected.set(collected)
        try:
            yield
        finally:
            _collected.reset(token)
            collected.pop(skip or "", None)
            if collected:
                self._wake(list(collected))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class PushQueued:
    """Service middleware: one batch of push requests per device request."""

    def __init__(self, inner: MDMService, storage: WakingStorage) -> None:
        self.inner = inner
        self.storage = storage

    def checkin(self, request: DeviceRequest, message: CheckinMessage) -> Reply:
        with self.storage.batch():
            return self.inner.checkin(request, message)

    def connect(self, request: DeviceRequest, result: CommandResult) -> Reply:
        with self.storage.batch(skip=result.identity.id):
            return self.inner.connect(request, result)
