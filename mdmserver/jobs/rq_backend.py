"""Jobs on Redis with RQ: pipelined enqueues, RQ's scheduler for delays and retries.

Every job runs the same entry point, :func:`mdmserver.jobs.rq_entry.run_task`, which looks the
task up by name in the worker; so queued jobs never name private functions, and renaming a
task module does not strand jobs already in Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import redis
from rq import Queue, Retry
from rq.queue import EnqueueData

from mdmserver.jobs.backend import QUEUES, BackendUnavailable, Job

ENTRY = "mdmserver.jobs.rq_entry.run_task"
RESULT_TTL = 300  # seconds a finished job's return value stays in Redis
_REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


def connect(url: str, *, socket_timeout: float | None = 10) -> redis.Redis:
    """A Redis client that fails fast: a device or admin request must never hang on Redis.

    A worker passes ``socket_timeout=None``: its blocking dequeue waits longer than any short
    read timeout, which RQ would otherwise report as a lost connection and back off for up to
    a minute, delaying every push behind it.
    """
    return redis.Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=socket_timeout, health_check_interval=30
    )


def queue_names(prefix: str) -> list[str]:
    return [f"{prefix}:{name}" for name in QUEUES]


class RQBackend:
    name = "rq"

    def __init__(self, url: str, prefix: str = "mdm") -> None:
        self.url = url
        self.prefix = prefix
        self.connection = connect(url)
        self._queues: dict[str, Queue] = {}

    def queue(self, name: str) -> Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = Queue(f"{self.prefix}:{name}", connection=self.connection)
            self._queues[name] = queue
        return queue

    def submit(self, jobs: Sequence[Job]) -> None:
        now: dict[str, list[Job]] = {}
        later: list[Job] = []
        for job in jobs:
            (later.append(job) if job.delay > 0 else now.setdefault(job.queue, []).append(job))
        try:
            for name, batch in now.items():
                queue = self.queue(name)
                with self.connection.pipeline() as pipe:
                    queue.enqueue_many([_data(job) for job in batch], pipeline=pipe)
                    pipe.execute()
            for job in later:
                self.queue(job.queue).enqueue_in(
                    timedelta(seconds=job.delay),
                    ENTRY,
                    job.task,
                    job.args,
                    retry=_retry(job),
                    description=job.task,
                    result_ttl=RESULT_TTL,
                )
        except _REDIS_ERRORS as exc:
            raise BackendUnavailable(f"Redis at {_safe(self.url)} is unavailable: {exc}") from exc

    def ping(self) -> bool:
        try:
            return bool(self.connection.ping())
        except _REDIS_ERRORS:
            return False

    def close(self) -> None:
        self.connection.close()


def _data(job: Job) -> EnqueueData:
    return Queue.prepare_data(
        ENTRY,
        args=(job.task, job.args),
        retry=_retry(job),
        description=job.task,
        result_ttl=RESULT_TTL,
    )


def _retry(job: Job) -> Retry | None:
    return Retry(max=len(job.retry), interval=list(job.retry)) if job.retry else None


def _safe(url: str) -> str:
    """The Redis URL without its password, for logs and errors."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
