"""Builds the background-work objects one app runs with: backend, dispatcher, webhooks.

RQ when ``MDM_REDIS_URL`` is set (run ``mdmserver worker`` beside the web server); otherwise
the embedded in-process backend, where the web process also runs the periodic re-push scan.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from mdmserver.config import Config
from mdmserver.jobs.backend import JobBackend
from mdmserver.jobs.context import JobContext
from mdmserver.jobs.dispatcher import Dispatcher, policy_from
from mdmserver.jobs.emitter import WebhookEmitter
from mdmserver.jobs.inprocess import InProcessBackend
from mdmserver.jobs.tasks import TASKS
from mdmserver.logs import get_logger
from mdmserver.service.push_scheduling import Pusher

log = get_logger("jobs")


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


def build_jobs(config: Config, engine: Engine, *, backend: JobBackend | None = None) -> Jobs:
    backend = backend or make_backend(config)
    context = JobContext(config, engine, backend)
    embedded = isinstance(backend, InProcessBackend)
    if isinstance(backend, InProcessBackend):
        backend.bind(lambda name, args: TASKS[name](context, *args))
    dispatcher = Dispatcher(
        context.outbox,
        context.push_store,
        backend,
        batch_size=config.push_batch_size,
        policy=policy_from(config.repush_interval_seconds, config.repush_max_attempts),
        retry_base=config.retry_base_seconds,
        scan_every=scan_period(config) if embedded else None,
    )
    if embedded:
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


def scan_period(config: Config) -> float:
    """How often to look for devices due a push: often enough for the re-push interval."""
    return float(max(1, min(60, config.repush_interval_seconds // 4 or 1)))
