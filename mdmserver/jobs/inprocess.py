"""The embedded default: jobs run on a small thread pool inside the web process.

No Redis to run or watch; the price is that queued jobs live in memory. Pushes are still safe:
their requests are in the database outbox until handed over, and the periodic scan re-pushes
whatever a crash dropped. Delays and retries use timers, as RQ's scheduler would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mdmserver.jobs.backend import BackendUnavailable, Job
from mdmserver.logs import get_logger

log = get_logger("jobs")

Runner = Callable[[str, tuple[Any, ...]], Any]


class InProcessBackend:
    name = "inprocess"

    def __init__(self, workers: int = 4) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mdm-job")
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._runner: Runner | None = None

    def bind(self, runner: Runner) -> None:
        """Tell the backend how to run a task (the app's job context does that)."""
        self._runner = runner

    def submit(self, jobs: Sequence[Job]) -> None:
        if self._closed:
            raise BackendUnavailable("the in-process job backend is closed")
        for job in jobs:
            self._schedule(job, job.delay, 0)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            timers, self._timers = self._timers, set()
        for timer in timers:
            timer.cancel()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _schedule(self, job: Job, delay: float, attempt: int) -> None:
        if delay <= 0:
            with self._lock:
                if not self._closed:
                    self._executor.submit(self._run, job, attempt)
            return
        timer = threading.Timer(delay, self._fire, (job, attempt))
        timer.daemon = True
        with self._lock:
            if self._closed:
                return
            self._timers.add(timer)
        timer.start()

    def _fire(self, job: Job, attempt: int) -> None:
        with self._lock:
            self._timers = {t for t in self._timers if t.is_alive() and t is not _current()}
        self._schedule(job, 0, attempt)

    def _run(self, job: Job, attempt: int) -> None:
        if self._runner is None:
            log.error("job_dropped", extra={"fields": {"task": job.task, "why": "no runner"}})
            return
        try:
            self._runner(job.task, job.args)
        except Exception as exc:
            if attempt < len(job.retry):
                log.warning(
                    "job_retry",
                    extra={
                        "fields": {
                            "task": job.task,
                            "attempt": attempt + 1,
                            "in_seconds": job.retry[attempt],
                            "error": str(exc)[:300],
                        }
                    },
                )
                self._schedule(job, job.retry[attempt], attempt + 1)
            else:
                log.exception("job_failed", extra={"fields": {"task": job.task}})


def _current() -> threading.Thread:
    return threading.current_thread()
