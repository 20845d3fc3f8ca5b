"""``mdmserver worker``: an RQ worker for pushes and webhooks, with RQ's scheduler.

Non-forking (RQ's SimpleWorker): jobs run in this process, so the push client and its HTTP/2
connections to APNs are made once and reused by every job, instead of once per forked job.
Beside it runs the push dispatcher: it hands the database outbox to Redis (so requests written
while Redis was down go out once it is back) and periodically finds devices due a re-push.
"""

from __future__ import annotations

import os

import click

from mdmserver.cli._instance import instance_config, open_database
from mdmserver.config import load_config
from mdmserver.logs import get_logger

log = get_logger("worker")


@click.command()
@click.option(
    "--queue",
    "queues",
    multiple=True,
    help="Queue to work on (repeatable; default: <prefix>:push then <prefix>:webhooks).",
)
@click.option("--burst", is_flag=True, help="Quit once the queues are empty (tests, batch runs).")
@click.option("--name", default=None, help="Worker name (default: RQ's host.pid).")
def worker(queues: tuple[str, ...], burst: bool, name: str | None) -> None:
    """Run background jobs from Redis (needs MDM_REDIS_URL): APNs pushes, webhooks."""
    from rq import Queue
    from rq.worker import SimpleWorker

    from mdmserver.app import create_app
    from mdmserver.jobs.context import close_process_context, process_context
    from mdmserver.jobs.dispatcher import Dispatcher, policy_from
    from mdmserver.jobs.rq_backend import connect, queue_names
    from mdmserver.jobs.runtime import scan_period
    from mdmserver.service.maintenance import upkeep
    from mdmserver.web.runtime import runtime

    config = load_config()
    if not config.redis_url:
        raise click.ClickException(
            "MDM_REDIS_URL is not set: without Redis, jobs run inside the web process"
        )
    config = instance_config()
    open_database(config).dispose()  # one clear refusal when the schema is behind
    context = process_context()
    # RQ forks its scheduler process: the child must not reuse (or close) our DB connections.
    os.register_at_fork(after_in_child=lambda: context.engine.dispose(close=False))
    connection = connect(config.redis_url, socket_timeout=None)
    names = list(queues) or queue_names(config.queue_prefix)
    period = scan_period(config)
    lock_key = f"{config.queue_prefix}:push-scan-lock"

    def one_scanner() -> bool:
        """Several workers share one scan per period; without Redis, scan anyway."""
        try:
            return bool(connection.set(lock_key, "1", nx=True, ex=max(1, int(period))))
        except Exception:
            return True

    dispatcher = Dispatcher(
        context.outbox,
        context.push_store,
        context.backend,
        batch_size=config.push_batch_size,
        policy=policy_from(config.repush_interval_seconds, config.repush_max_attempts),
        retry_base=config.retry_base_seconds,
        tick=1.0,
        scan_every=period,
        scan_guard=one_scanner,
    )
    # The features' upkeep tasks, built exactly as the web process builds them.
    app = create_app(config)
    app_runtime = runtime(app)
    os.register_at_fork(after_in_child=lambda: app_runtime.storage.dispose(close=False))
    dispatcher.maintenance = upkeep(app)
    dispatcher.start()
    log.info(
        "worker_start",
        extra={"fields": {"queues": names, "scan_every": period, "backend": "rq"}},
    )
    try:
        rq_worker = SimpleWorker(
            [Queue(n, connection=connection) for n in names], connection=connection, name=name
        )
        rq_worker.work(burst=burst, with_scheduler=True, logging_level=config.log_level.upper())
    finally:
        dispatcher.stop()
        close_process_context()
        connection.close()
