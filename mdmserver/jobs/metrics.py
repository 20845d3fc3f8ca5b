"""Push health on /metrics: enrollments by their last push outcome, and the outbox backlog.

A rising ``certificate_error`` count means APNs refuses the push certificate: no device wakes
until someone renews or fixes it, so it belongs on a dashboard with an alert.
"""

from __future__ import annotations

from collections.abc import Iterable

from mdmserver.metrics.registry import MetricsRegistry, Sample
from mdmserver.service.push_scheduling import Pusher

OUTCOMES = ("delivered", "stale_token", "retry", "certificate_error", "rejected")


def register_push_metrics(registry: MetricsRegistry, pusher: Pusher) -> None:
    def last_outcome() -> Iterable[Sample]:
        counts = pusher.status_store.summary()["by_outcome"]
        return [({"outcome": name}, counts.get(name, 0)) for name in OUTCOMES]

    def outbox() -> Iterable[Sample]:
        return [({}, pusher.outbox.pending())]

    registry.register(
        "mdm_push_last_outcome",
        "gauge",
        "Enrollments by the outcome of their last APNs push.",
        last_outcome,
    )
    registry.register(
        "mdm_push_outbox_pending",
        "gauge",
        "Push requests stored but not yet handed to the job queue (Redis down?).",
        outbox,
    )
