"""What a task needs (settings, database, job backend, the push client), one per process.

The server's assembly builds one with its job backend (``Server.jobs.context``): the web
process runs its in-process jobs with it, and ``mdmserver worker`` makes it the process's
context (:func:`use_process_context`), which the RQ entry point passes to every task. So the
push client (and its TLS connections to APNs) lives as long as the worker process, not one
job. An RQ worker started by other means (``rq worker``) builds a context from the ``MDM_*``
settings on its first job instead.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from mdmserver.config import Config, load_config
from mdmserver.jobs.backend import JobBackend
from mdmserver.logs import configure_logging, get_logger
from mdmserver.push.apns_target import ApnsEndpoint, current_endpoint
from mdmserver.push.client import PushClient
from mdmserver.push.instance import installed
from mdmserver.storage.sql.engine import make_engine
from mdmserver.storage.sql.outbox_store import OutboxStore
from mdmserver.storage.sql.push_store import PushStore

log = get_logger("jobs")


@dataclass
class JobContext:
    config: Config
    engine: Engine
    backend: JobBackend
    # Asks for pushes the way this process's dispatcher takes them at once (set by
    # build_jobs); None: tasks write the outbox, which a dispatcher drains on its tick.
    wake: Callable[[list[str]], object] | None = None
    push_store: PushStore = field(init=False)
    outbox: OutboxStore = field(init=False)
    _client: PushClient | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.push_store = PushStore(self.engine)
        self.outbox = OutboxStore(self.engine)

    def push_client(self) -> PushClient | None:
        """The process's push client, or None (logged) when no push certificate is installed."""
        with self._lock:
            if self._client is None or self._client.closed:
                certificate = installed(self.config)
                if certificate is None:
                    return None
                self._client = PushClient.from_certificate(
                    certificate,
                    use_sandbox=self.config.apns_sandbox,
                    endpoint=apns_endpoint(self.config),
                    max_in_flight=512,
                    timeout=30.0,
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def apns_endpoint(config: Config) -> ApnsEndpoint | None:
    """A stand-in gateway from the settings (MDM_APNS_HOST...), else any test override."""
    if not config.apns_host:
        return current_endpoint()
    ca = Path(config.apns_ca_file).read_bytes() if config.apns_ca_file else None
    return ApnsEndpoint(config.apns_host, config.apns_port, ca)


_process: JobContext | None = None
_process_pid = 0
_process_owned = False  # built here (closed here), not installed by a server
_process_lock = threading.Lock()


def use_process_context(context: JobContext) -> None:
    """Make ``context`` (the worker's server's) the one this process's RQ jobs run with."""
    global _process, _process_pid, _process_owned
    with _process_lock:
        _process, _process_pid, _process_owned = context, os.getpid(), False


def process_context() -> JobContext:
    """This worker process's context: the one installed by ``mdmserver worker``, otherwise one
    built from the environment (rebuilt after a fork)."""
    global _process, _process_pid, _process_owned
    with _process_lock:
        if _process is None or _process_pid != os.getpid():
            config = load_config()
            configure_logging(config.log_level, config.log_json)
            from mdmserver.jobs.rq_backend import RQBackend

            backend = RQBackend(config.redis_url, config.queue_prefix)
            _process = JobContext(config, make_engine(config.resolved_database_url), backend)
            _process_pid, _process_owned = os.getpid(), True
        return _process


def close_process_context() -> None:
    """Forget the process's context; one this module built is closed with its engine (an
    installed one belongs to its server, which closes it)."""
    global _process
    with _process_lock:
        context, _process = _process, None
    if context is not None and _process_pid == os.getpid() and _process_owned:
        context.close()
        context.engine.dispose()
