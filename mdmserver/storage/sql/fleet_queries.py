"""Read side for the console's dashboard: the fleet counted by platform, OS, compliance, last
seen, queue and push health. Every number is one aggregate statement, so the dashboard costs
the same few queries whether the fleet has 10 devices or 100,000.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.engine import Engine

from mdmserver.catalog.platforms import platform_of
from mdmserver.storage.sql.schema import (
    command_queue,
    compliance_history,
    compliance_state,
    devices,
    push_outbox,
    push_status,
)
from mdmserver.storage.sql.types import utcnow

# Failing rules are counted over at most this many non-compliant devices (the newest first);
# beyond it the dashboard says the figures are a sample.
RULE_SAMPLE = 20_000


@dataclass
class FleetSummary:
    total: int = 0
    enrolled: int = 0
    by_platform: dict[str, int] = field(default_factory=dict)
    by_os: list[tuple[str, str, int]] = field(default_factory=list)  # platform, version, n
    compliance: dict[str, int] = field(default_factory=dict)
    top_failures: list[tuple[str, int]] = field(default_factory=list)
    failures_sampled: bool = False
    not_seen: int = 0
    not_seen_days: int = 7
    queue: dict[str, int] = field(default_factory=dict)
    push: dict[str, int] = field(default_factory=dict)
    outbox_pending: int = 0
    compliance_changes: list[tuple[str, int, int]] = field(default_factory=list)  # day, +, -


class FleetQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def summary(self, *, not_seen_days: int = 7, now: datetime | None = None) -> FleetSummary:
        now = now or utcnow()
        out = FleetSummary(not_seen_days=not_seen_days)
        with self.engine.connect() as conn:
            total, enrolled = conn.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(case((devices.c.enrolled.is_(True), 1), else_=0)), 0),
                ).select_from(devices)
            ).one()
            out.total, out.enrolled = int(total), int(enrolled)
            platforms: Counter[str] = Counter()
            by_os: Counter[tuple[str, str]] = Counter()
            rows = conn.execute(
                select(devices.c.product_name, devices.c.model, devices.c.os_version, func.count())
                .where(devices.c.enrolled.is_(True))
                .group_by(devices.c.product_name, devices.c.model, devices.c.os_version)
            ).all()
            for product, model, os_version, count in rows:
                name = platform_of(product, model) or "unknown"
                platforms[name] += count
                by_os[(name, os_version or "unknown")] += count
            out.by_platform = dict(platforms.most_common())
            out.by_os = [(p, v, n) for (p, v), n in by_os.most_common(12)]

            states: dict[str, int] = dict(
                conn.execute(
                    select(compliance_state.c.state, func.count())
                    .join(devices, devices.c.id == compliance_state.c.device_id)
                    .where(devices.c.enrolled.is_(True))
                    .group_by(compliance_state.c.state)
                ).all()
            )
            known = sum(states.get(s, 0) for s in ("compliant", "noncompliant"))
            out.compliance = {
                "compliant": int(states.get("compliant", 0)),
                "noncompliant": int(states.get("noncompliant", 0)),
                "unknown": max(out.enrolled - known, 0),
            }
            failures: Counter[str] = Counter()
            reasons = conn.execute(
                select(compliance_state.c.results)
                .where(compliance_state.c.state == "noncompliant")
                .order_by(compliance_state.c.changed_at.desc())
                .limit(RULE_SAMPLE)
            ).scalars()
            seen = 0
            for text in reasons:
                seen += 1
                for result in json.loads(text):
                    if result.get("outcome") == "fail":
                        failures[str(result.get("rule"))] += 1
            out.top_failures = failures.most_common(5)
            out.failures_sampled = seen >= RULE_SAMPLE

            cutoff = now - timedelta(days=not_seen_days)
            out.not_seen = int(
                conn.execute(
                    select(func.count())
                    .select_from(devices)
                    .where(
                        devices.c.enrolled.is_(True),
                        (devices.c.last_seen_at < cutoff) | devices.c.last_seen_at.is_(None),
                    )
                ).scalar_one()
            )
            out.queue = {
                status: int(n)
                for status, n in conn.execute(
                    select(command_queue.c.status, func.count())
                    .where(command_queue.c.status.in_(("queued", "sent", "notnow")))
                    .group_by(command_queue.c.status)
                ).all()
            }
            out.push = {
                outcome: int(n)
                for outcome, n in conn.execute(
                    select(push_status.c.last_outcome, func.count()).group_by(
                        push_status.c.last_outcome
                    )
                ).all()
            }
            out.outbox_pending = int(
                conn.execute(select(func.count()).select_from(push_outbox)).scalar_one()
            )
            since = (now - timedelta(days=13)).replace(hour=0, minute=0, second=0, microsecond=0)
            changes: dict[str, list[int]] = {
                (since + timedelta(days=i)).strftime("%Y-%m-%d"): [0, 0] for i in range(14)
            }
            for at, state in conn.execute(
                select(compliance_history.c.at, compliance_history.c.state).where(
                    compliance_history.c.at >= since,
                    compliance_history.c.state.in_(("compliant", "noncompliant")),
                )
            ):
                day = at.strftime("%Y-%m-%d")
                if day in changes:
                    changes[day][0 if state == "compliant" else 1] += 1
            out.compliance_changes = [(day, up, down) for day, (up, down) in changes.items()]
        return out
