"""Moves push requests from the database outbox to the job queue, and finds who needs a push.

Requests are coalesced: a burst of requests wakes the dispatcher once, and it sends them as
jobs of ``push_batch_size`` enrollments each (RQ's ``enqueue_many``, one pipeline). When the
queue is down the rows stay in the outbox and the next tick (every few seconds) tries again.
The scan (the periodic re-push) runs where pushes run: in the web process for the in-process
backend, in ``mdmserver worker`` for RQ.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections.abc import Callable
from datetime import timedelta

from mdmserver.jobs.backend import PUSH_QUEUE, BackendUnavailable, Job, JobBackend, backoff
from mdmserver.logs import get_logger
from mdmserver.storage.ports import OutboxPort, PushPort
from mdmserver.storage.sql.outbox_store import OutboxRow
from mdmserver.storage.sql.push_store import RepushPolicy

log = get_logger("push.dispatch")

COALESCE_SECONDS = 0.05  # how long a woken dispatcher waits for more requests to join
JOB_RETRY = 3  # a push job that raises (database down...) is retried by the queue this often


class Dispatcher:
    def __init__(
        self,
        outbox: OutboxPort,
        push_store: PushPort,
        backend: JobBackend,
        *,
        batch_size: int = 1000,
        policy: RepushPolicy | None = None,
        retry_base: int = 5,
        tick: float = 5.0,
        scan_every: float | None = None,
        scan_guard: Callable[[], bool] | None = None,
        hand_over: bool = True,
    ) -> None:
        self.outbox = outbox
        self.push_store = push_store
        self.backend = backend
        self.batch_size = batch_size
        self.policy = policy
        self.retry = backoff(retry_base, JOB_RETRY)
        self.tick = tick
        self.scan_every = scan_every
        self.scan_guard = scan_guard  # e.g. a Redis lock so one worker of many scans
        # False in a CLI run: its requests stay in the outbox for the running server to drain
        # (a short-lived process must not start pushing and exit halfway).
        self.hand_over = hand_over
        # Periodic upkeep run with each scan (mdmserver.maintenance), set once the app is built.
        self.maintenance: Callable[[], object] | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last_scan = 0.0
        self.backlog_since: float | None = None  # when handing over last failed

    # Requests -------------------------------------------------------------------------------

    def request(self, enrollment_ids: list[str], *, repush: bool = False) -> int:
        """Store push requests (durable) and wake the dispatcher thread to hand them over."""
        written = self.outbox.add(enrollment_ids, repush=repush)
        if written and self.hand_over:
            self.start()
            self._wake.set()
        return written

    def drain(self) -> int:
        """Hand every outbox row to the job queue; returns how many went (0 if it is down)."""
        handed = 0
        while True:
            rows = self.outbox.claim(self.batch_size * 20)
            if not rows:
                break
            try:
                self.backend.submit(self._jobs(rows))
            except BackendUnavailable as exc:
                self.outbox.release(row.id for row in rows)
                if self.backlog_since is None:
                    self.backlog_since = time.time()
                log.warning(
                    "push_dispatch_deferred",
                    extra={"fields": {"requests": len(rows), "error": str(exc)[:300]}},
                )
                return handed
            self.outbox.done(row.id for row in rows)
            handed += len(rows)
            self.backlog_since = None
        if handed:
            log.info("push_dispatched", extra={"fields": {"requests": handed}})
        return handed

    def scan(self) -> int:
        """Queue pushes for enrollments with pending commands that were never woken, or stayed
        silent after their last push (bounded back-off)."""
        if self.policy is None or (self.scan_guard is not None and not self.scan_guard()):
            return 0
        if self.maintenance is not None:
            # First, so the commands it queues (renewals, inventory) are pushed by this scan.
            self.maintenance()
        fresh, again = self.push_store.due(self.policy)
        self.outbox.add(fresh)
        self.outbox.add(again, repush=True)
        if fresh or again:
            log.info("push_scan", extra={"fields": {"fresh": len(fresh), "repush": len(again)}})
        return len(fresh) + len(again)

    def _jobs(self, rows: list[OutboxRow]) -> list[Job]:
        jobs = []
        for repush in (False, True):
            ids = list(dict.fromkeys(r.enrollment_id for r in rows if r.repush is repush))
            for start in range(0, len(ids), self.batch_size):
                batch = ids[start : start + self.batch_size]
                jobs.append(Job("push", (batch, repush, 0), queue=PUSH_QUEUE, retry=self.retry))
        return jobs

    # Background thread ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the background thread (once per process; it ends with the dispatcher)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=_run,
                args=(weakref.ref(self), self._wake, self._stop),
                daemon=True,
                name="push-dispatch",
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    def step(self) -> None:
        """One tick: scan when due, then drain."""
        if self.scan_every is not None and time.monotonic() - self._last_scan >= self.scan_every:
            self._last_scan = time.monotonic()
            self.scan()
        self.drain()


_stops: weakref.WeakSet[threading.Event] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """Stop every loop before the interpreter tears logging and the database down."""
    for event in list(_stops):
        event.set()


def _run(ref: weakref.ref[Dispatcher], wake: threading.Event, stop: threading.Event) -> None:
    """The loop holds the dispatcher weakly, so a discarded app's thread ends by itself.

    A failing tick (database unreachable) is logged once per streak and backs off to a minute.
    """
    _stops.add(stop)
    failures = 0
    while not stop.is_set():
        dispatcher = ref()
        if dispatcher is None:
            return
        tick = dispatcher.tick
        try:
            dispatcher.step()
            failures = 0
        except Exception as exc:
            failures += 1
            if failures == 1:
                log.warning("push_dispatch_failed", extra={"fields": {"error": str(exc)[:300]}})
            tick = min(60.0, tick * 2**failures)
        del dispatcher
        if wake.wait(tick):
            wake.clear()
            time.sleep(COALESCE_SECONDS)


def policy_from(interval: int, max_attempts: int) -> RepushPolicy:
    return RepushPolicy(
        interval=timedelta(seconds=interval),
        max_attempts=max_attempts,
        grace=timedelta(seconds=min(30, interval)),
    )
