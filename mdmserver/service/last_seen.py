"""Last seen, from every check-in and command-loop request, written in batches.

A device request only notes "this enrollment was seen now" in a per-process map (a dict store,
no I/O); a background thread writes the map every ``LAST_SEEN_DELAY`` seconds in one
transaction (``Storage.touch_many``), so the hot path never waits on a last-seen write and a
device polling often costs one row update per delay, not one per poll. What a reader sees is at
most ``LAST_SEEN_DELAY`` seconds (plus the write itself) behind the device. The map is flushed
when the process exits; a crash loses at most one delay's worth of "seen" times, never a result.

:class:`SeenEvents` wraps the service like the webhook events do: only requests the inner
service accepted count as "seen" (a refused request changes nothing).
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from datetime import UTC, datetime

from mdmserver.logs import get_logger
from mdmserver.protocol.checkin import CheckinMessage
from mdmserver.protocol.enrollment_id import EnrollmentIdentity
from mdmserver.protocol.results import CommandResult
from mdmserver.service.base import MDMService, Reply
from mdmserver.service.context import DeviceRequest
from mdmserver.storage.base import Seen
from mdmserver.storage.ports import LastSeenPort

log = get_logger("last_seen")

LAST_SEEN_DELAY = 1.0  # seconds; documented in the README ("Last seen")


class SeenRecorder:
    """Collects (enrollment, device, time) and writes them from a thread, once per delay."""

    def __init__(self, storage: LastSeenPort, delay: float = LAST_SEEN_DELAY) -> None:
        self.storage = storage
        self.delay = delay
        self._pending: dict[str, Seen] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        _recorders.add(self)

    def seen(self, identity: EnrollmentIdentity) -> None:
        """Note that the enrollment (and its device) was seen now; never blocks on the database."""
        entry = Seen(identity.id, identity.device_id, datetime.now(UTC))
        with self._lock:
            self._pending[identity.id] = entry
        if self._thread is None or self._pid != os.getpid():
            self._start()

    def flush(self) -> int:
        """Write what is pending (one transaction); returns how many enrollments it touched."""
        with self._lock:
            batch, self._pending = list(self._pending.values()), {}
        if not batch:
            return 0
        try:
            self.storage.touch_many(batch)
        except Exception as exc:
            with self._lock:  # keep them for the next round, unless newer times arrived
                for entry in batch:
                    self._pending.setdefault(entry.enrollment_id, entry)
            log.warning("last_seen_write_failed", extra={"fields": {"error": str(exc)[:300]}})
            return 0
        return len(batch)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and self._pid == os.getpid() and thread.is_alive():
            thread.join(timeout=10)
        self.flush()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=_run, args=(weakref.ref(self), self._stop), daemon=True, name="last-seen"
            )
            self._thread.start()


_recorders: weakref.WeakSet[SeenRecorder] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:
    for recorder in list(_recorders):
        recorder._stop.set()
        recorder.flush()


def _run(ref: weakref.ref[SeenRecorder], stop: threading.Event) -> None:
    """Holds the recorder weakly, so a discarded app's thread ends by itself."""
    while not stop.wait(_delay(ref)):
        recorder = ref()
        if recorder is None:
            return
        recorder.flush()
        del recorder


def _delay(ref: weakref.ref[SeenRecorder]) -> float:
    recorder = ref()
    return recorder.delay if recorder is not None else 0.0


class SeenEvents:
    """Service middleware: every request the inner service answered marks its sender seen."""

    def __init__(self, inner: MDMService, recorder: SeenRecorder) -> None:
        self.inner = inner
        self.recorder = recorder

    def checkin(self, request: DeviceRequest, message: CheckinMessage) -> Reply:
        reply = self.inner.checkin(request, message)
        self.recorder.seen(message.identity)
        return reply

    def connect(self, request: DeviceRequest, result: CommandResult) -> Reply:
        reply = self.inner.connect(request, result)
        self.recorder.seen(result.identity)
        return reply
