"""Builds the background-work objects one server process runs with: backend, dispatcher,
webhooks (called by :func:`mdmserver.assembly.build_server`).

RQ when ``MDM_REDIS_URL`` is set (run ``mdmserver worker`` beside the web server); otherwise
the embedded in-process backend, where the web process also runs the periodic re-push scan.
Which process this is decides who scans and who hands the outbox to the queue:

    web     in-process backend: scans and hands over; RQ: hands over, never scans
    worker  RQ only: scans (one worker per period, under a Redis lock) and hands over
    cli     neither: push requests stay in the outbox for the running server or worker
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.engine import Engine

from mdmserver.config import Config
from mdmserver.jobs.backend import JobBackend
from mdmserver.jobs.context import JobContext
from mdmserver.jobs.dispatcher import Dispatcher, policy_from
from mdmserver.jobs.emitter import WebhookEmitter
from mdmserver.jobs.inprocess import InProcessBackend
from mdmserver.jobs.tasks import TASKS
from mdmserver.logs import get_logger
from mdmserver.push.scheduling import Pusher

log = get_logger("jobs")

Role = Literal["web", "worker", "cli"]


@dataclass
class Jobs:
    backend: JobBackend
    context: JobContext
    dispatcher: Dispatcher
    pusher: Pusher
    emitter: WebhookEmitter | None

    def close(self) -> None:
        """Stop the threads, finish in-process jobs, close the push client (tests, shutdown)."""
        if self.emitter is not None:
            self.emitter.close()
        self.dispatcher.stop()
        self.backend.close()
        self.context.close()


def make_backend(config: Config) -> JobBackend:
    if config.redis_url:
        from mdmserver.jobs.rq_backend import RQBackend

        return RQBackend(config.redis_url, config.queue_prefix)
    return InProcessBackend()


def build_jobs(
    config: Config, engine: Engine, *, backend: JobBackend | None = None, role: Role = "web"
) -> Jobs:
    backend = backend or make_backend(config)
    context = JobContext(config, engine, backend)
    embedded = isinstance(backend, InProcessBackend)
    if isinstance(backend, InProcessBackend):
        backend.bind(lambda name, args: TASKS[name](context, *args))
    scans = role == "worker" or (role == "web" and embedded)
    dispatcher = Dispatcher(
        context.outbox,
        context.push_store,
        backend,
        batch_size=config.push_batch_size,
        policy=policy_from(config.repush_interval_seconds, config.repush_max_attempts),
        retry_base=config.retry_base_seconds,
        tick=1.0 if role == "worker" else 5.0,
        scan_every=scan_period(config) if scans else None,
        scan_guard=scan_lock(config) if role == "worker" else None,
        hand_over=role != "cli",
    )
    if role != "cli":
        context.wake = dispatcher.request  # a task's pushes go out at once, not on the tick
    if role == "web" and embedded:
        dispatcher.start()  # nobody else scans for silent devices in the embedded setup
    emitter = None
    if config.webhook_urls:
        emitter = WebhookEmitter(backend, config.webhook_urls, retry_base=config.retry_base_seconds)
        if not config.webhook_secret:
            log.warning(
                "webhook_unsigned",
                extra={"fields": {"detail": "MDM_WEBHOOK_SECRET is not set: events go unsigned"}},
            )
    pusher = Pusher(dispatcher, context.push_store, context.outbox, backend.name)
    return Jobs(backend, context, dispatcher, pusher, emitter)


def scan_lock(config: Config) -> Callable[[], bool]:
    """Several workers share one scan per period: the one that takes the Redis lock scans;
    without Redis reachable, scan anyway."""
    from mdmserver.jobs.rq_backend import connect

    connection = connect(config.redis_url)
    key, period = f"{config.queue_prefix}:push-scan-lock", max(1, int(scan_period(config)))

    def one_scanner() -> bool:
        try:
            return bool(connection.set(key, "1", nx=True, ex=period))
        except Exception:
            return True

    return one_scanner


def scan_period(config: Config) -> float:
    """How often to look for devices due a push: often enough for the re-push interval."""
    return float(max(1, min(60, config.repush_interval_seconds // 4 or 1)))
