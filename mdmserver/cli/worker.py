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

    from mdmserver.assembly import build_server
    from mdmserver.jobs.context import close_process_context, use_process_context
    from mdmserver.jobs.rq_backend import connect, queue_names
    from mdmserver.logs import configure_logging

    config = load_config()
    if not config.redis_url:
        raise click.ClickException(
            "MDM_REDIS_URL is not set: without Redis, jobs run inside the web process"
        )
    config = instance_config()
    configure_logging(config.log_level, config.log_json)
    # The same server the web process assembles (no Flask app): its job context runs the
    # jobs, its dispatcher scans (with the features' upkeep) and hands the outbox to Redis.
    server = build_server(config, role="worker", engine=open_database(config))
    # RQ forks its scheduler process: the child must not reuse (or close) our DB connections.
    os.register_at_fork(after_in_child=lambda: server.storage.dispose(close=False))
    use_process_context(server.jobs.context)
    connection = connect(config.redis_url, socket_timeout=None)
    names = list(queues) or queue_names(config.queue_prefix)
    dispatcher = server.jobs.dispatcher
    dispatcher.start()
    log.info(
        "worker_start",
        extra={"fields": {"queues": names, "scan_every": dispatcher.scan_every, "backend": "rq"}},
    )
    try:
        rq_worker = SimpleWorker(
            [Queue(n, connection=connection) for n in names], connection=connection, name=name
        )
        rq_worker.work(burst=burst, with_scheduler=True, logging_level=config.log_level.upper())
    finally:
        close_process_context()
        server.close()
        connection.close()
