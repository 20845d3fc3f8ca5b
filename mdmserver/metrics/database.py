"""The server's own metrics, counted in the database at scrape time.

Check-ins are the ``events`` rows the storage writes for every accepted Authenticate,
TokenUpdate and CheckOut (refused check-ins change nothing in the database, so they are not
counted here: their count would need a per-process counter). Command results and queue depth
come from ``command_queue``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Engine

from mdmserver.metrics.registry import MetricsRegistry, Sample
from mdmserver.storage.base import ANSWERED, PENDING
from mdmserver.storage.sql.schema import command_queue, commands, devices, events


def register_database_metrics(registry: MetricsRegistry, engine: Engine) -> None:
    def checkins() -> Iterable[Sample]:
        query = select(events.c.kind, func.count()).group_by(events.c.kind)
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        return [({"type": kind, "status": "accepted"}, count) for kind, count in rows]

    def results() -> Iterable[Sample]:
        answered = [s.value for s in ANSWERED]
        query = (
            select(command_queue.c.status, func.count())
            .where(command_queue.c.status.in_(answered))
            .group_by(command_queue.c.status)
        )
        with engine.connect() as conn:
            counts = {status: count for status, count in conn.execute(query).all()}
        return [({"status": status}, counts.get(status, 0)) for status in answered]

    def depth() -> Iterable[Sample]:
        pending = [s.value for s in PENDING]
        live = or_(commands.c.expires_at.is_(None), commands.c.expires_at > datetime.now(UTC))
        query = (
            select(command_queue.c.status, func.count())
            .select_from(command_queue.join(commands))
            .where(and_(command_queue.c.status.in_(pending), live))
            .group_by(command_queue.c.status)
        )
        with engine.connect() as conn:
            counts = {status: count for status, count in conn.execute(query).all()}
        return [({"status": status}, counts.get(status, 0)) for status in pending]

    def enrolled() -> Iterable[Sample]:
        query = select(devices.c.enrolled, func.count()).group_by(devices.c.enrolled)
        with engine.connect() as conn:
            counts = {bool(k): v for k, v in conn.execute(query).all()}
        return [({"enrolled": str(k).lower()}, counts.get(k, 0)) for k in (True, False)]

    registry.register(
        "mdm_checkins_total",
        "counter",
        "Accepted check-in messages, by MessageType (from the events table)",
        checkins,
    )
    registry.register(
        "mdm_command_results_total",
        "counter",
        "Command results devices reported, by status",
        results,
    )
    registry.register(
        "mdm_command_queue_depth",
        "gauge",
        "Commands waiting to be delivered or answered (not expired), by status",
        depth,
    )
    registry.register("mdm_devices", "gauge", "Known devices, by enrollment state", enrolled)
