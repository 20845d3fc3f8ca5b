"""The objects one app instance runs with, built once by the app factory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import Flask
from sqlalchemy.engine import Engine

from mdmserver.config import Config
from mdmserver.metrics.registry import MetricsRegistry
from mdmserver.service.admin import Admin
from mdmserver.service.base import MDMService
from mdmserver.service.hooks import Hooks
from mdmserver.service.last_seen import SeenRecorder
from mdmserver.service.rate_limits import RateLimiter
from mdmserver.storage.base import Storage
from mdmserver.web.device_auth import DeviceAuthenticator

if TYPE_CHECKING:
    from mdmserver.jobs.runtime import Jobs
    from mdmserver.service.push_scheduling import Pusher

EXTENSION = "mdmserver"


@dataclass
class Runtime:
    config: Config
    engine: Engine
    storage: Storage
    service: MDMService
    authenticator: DeviceAuthenticator
    # Features register what they do when devices answer or enroll (see service/hooks.py).
    hooks: Hooks = field(default_factory=Hooks)
    # The admin API and CLI service (issue #5), and the /metrics registry features add to.
    admin: Admin | None = None
    metrics: MetricsRegistry = field(default_factory=MetricsRegistry)
    # Background work (issue #4): request pushes after queueing commands; backend, threads.
    pusher: Pusher | None = None
    jobs: Jobs | None = None
    # 429s for enrollment, SCEP and admin key guesses, counted across processes (issue #13).
    rate_limiter: RateLimiter | None = None
    # Last seen of device requests, written in batches by a thread (service/last_seen.py).
    seen: SeenRecorder | None = None

    def close(self) -> None:
        """Stop the background threads and release the database connections.

        The push dispatcher claims work from the database's outbox: an app left running
        would take (and, configured differently, fail) pushes that belong to another.
        """
        if self.seen is not None:
            self.seen.close()
        if self.jobs is not None:
            self.jobs.close()
        self.storage.dispose()


def runtime(app: Flask) -> Runtime:
    return app.extensions[EXTENSION]
