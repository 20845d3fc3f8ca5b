"""Asking for pushes: what the admin API, the CLI and features call after queueing commands.

``request_push`` writes the request to the database outbox (so it survives a Redis outage and
a crash) and wakes the dispatcher, which coalesces requests into batched push jobs. Callers
never talk to APNs or Redis themselves.

Typical use, after ``storage.enqueue(command, ids)``::

    runtime(app).pusher.request_push(ids)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from mdmserver.logs import get_logger

log = get_logger("push")


class _Dispatch(Protocol):
    def request(self, enrollment_ids: list[str], *, repush: bool = False) -> int: ...


class _Status(Protocol):
    def summary(self) -> dict[str, Any]: ...
    def channels(self, device_id: str) -> list[str]: ...
    def status(self, enrollment_id: str) -> dict[str, Any] | None: ...


class _Outbox(Protocol):
    def pending(self) -> int: ...


class Pusher:
    def __init__(
        self, dispatcher: _Dispatch, status: _Status, outbox: _Outbox, backend: str
    ) -> None:
        self.dispatcher = dispatcher
        self.status_store = status
        self.outbox = outbox
        self.backend = backend

    def request_push(self, enrollment_ids: Iterable[str]) -> int:
        """Wake these enrollments soon; returns how many requests were stored."""
        ids = [eid for eid in dict.fromkeys(enrollment_ids) if eid]
        return self.dispatcher.request(ids) if ids else 0

    def push_device(self, device_id: str) -> list[str]:
        """Wake every active channel of a device; returns their enrollment ids (may be [])."""
        channels = self.status_store.channels(device_id)
        self.request_push(channels)
        return channels

    def enrollment_status(self, enrollment_id: str) -> dict[str, Any] | None:
        """The last push to one enrollment: when, what APNs said, how many re-pushes."""
        return self.status_store.status(enrollment_id)

    def status(self) -> dict[str, Any]:
        """For the admin: outcomes per enrollment, the latest certificate error, the backlog."""
        summary = self.status_store.summary()
        summary["outbox_pending"] = self.outbox.pending()
        summary["backend"] = self.backend
        summary["certificate_errors"] = summary["by_outcome"].get("certificate_error", 0)
        return summary
