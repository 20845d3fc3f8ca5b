"""Hands webhook events to the job queue from a background thread, never from the request.

A device request only appends the event to a bounded in-memory buffer (microseconds); this
thread turns buffered events into one delivery job per URL and submits them in batches. When the
queue is down, events wait in the buffer and the thread retries with back-off; if the buffer
fills, the oldest events are dropped and counted, because a device must never wait on webhooks.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Sequence

from mdmserver.jobs.backend import WEBHOOK_QUEUE, BackendUnavailable, Job, JobBackend, backoff
from mdmserver.logs import get_logger

log = get_logger("webhooks")

MAX_BUFFERED = 100_000
BATCH = 500
WEBHOOK_RETRY_ROUNDS = 6


class WebhookEmitter:
    def __init__(self, backend: JobBackend, urls: Sequence[str], *, retry_base: int = 5) -> None:
        self.backend = backend
        self.urls = tuple(urls)
        self.retry = backoff(retry_base, WEBHOOK_RETRY_ROUNDS)
        self.dropped = 0
        self._buffer: deque[bytes] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closed = False

    def emit(self, body: bytes) -> None:
        """Queue one event (already serialised); never blocks, never raises."""
        with self._cond:
            if len(self._buffer) >= MAX_BUFFERED:
                self._buffer.popleft()
                self.dropped += 1
                if self.dropped % 1000 == 1:
                    log.error("webhook_events_dropped", extra={"fields": {"total": self.dropped}})
            self._buffer.append(body)
            self._ensure_thread()
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._buffer)

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and self._pid == os.getpid():
            thread.join(timeout)

    def _ensure_thread(self) -> None:
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, daemon=True, name="webhook-emit")
            self._thread.start()

    def _run(self) -> None:
        failures = 0
        while True:
            with self._cond:
                while not self._buffer and not self._closed:
                    self._cond.wait()
                if not self._buffer:
                    return
                batch = [self._buffer.popleft() for _ in range(min(BATCH, len(self._buffer)))]
            jobs = [
                Job("webhook", (url, body), queue=WEBHOOK_QUEUE, retry=self.retry)
                for body in batch
                for url in self.urls
            ]
            try:
                self.backend.submit(jobs)
                failures = 0
            except BackendUnavailable as exc:
                with self._cond:
                    self._buffer.extendleft(reversed(batch))
                failures += 1
                wait = min(30.0, 0.5 * 2 ** min(failures, 6))
                log.warning(
                    "webhook_enqueue_deferred",
                    extra={
                        "fields": {"events": len(batch), "retry_in": wait, "error": str(exc)[:300]}
                    },
                )
                with self._cond:
                    if self._closed:
                        return
                    self._cond.wait(wait)
            except Exception:
                log.exception("webhook_enqueue_failed", extra={"fields": {"events": len(batch)}})
