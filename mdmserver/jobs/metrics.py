"""Push health on /metrics: enrollments by their last push outcome, and the outbox backlog.

A rising ``certificate_error`` count means APNs refuses the push certificate: no device wakes
until someone renews or fixes it, so it belongs on a dashboard with an alert.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from mdmserver.metrics.registry import MetricsRegistry, Sample
from mdmserver.push.instance import EXPIRY_URGENT_DAYS, EXPIRY_WARNING_DAYS
from mdmserver.push.scheduling import Pusher

OUTCOMES = ("delivered", "stale_token", "retry", "certificate_error", "rejected")


def register_push_metrics(
    registry: MetricsRegistry, pusher: Pusher, cert_file: Path | None = None
) -> None:
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

    def left() -> float | None:
        # Read at scrape time: a certificate renewed with push-cert import shows at once.
        if cert_file is None or not cert_file.is_file():
            return None
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        return (cert.not_valid_after_utc - datetime.now(UTC)).total_seconds() / 86400

    def days_left() -> Iterable[Sample]:
        days = left()
        return [] if days is None else [({}, round(days, 2))]

    def expiring() -> Iterable[Sample]:
        days = left()
        if days is None:
            return []
        windows = (EXPIRY_WARNING_DAYS, EXPIRY_URGENT_DAYS)
        return [({"within_days": str(w)}, 1 if days < w else 0) for w in windows]

    registry.register(
        "mdm_push_certificate_days_left",
        "gauge",
        "Days until the APNs push certificate expires (devices go unreachable after).",
        days_left,
    )
    registry.register(
        "mdm_push_certificate_expiring",
        "gauge",
        "1 when the APNs push certificate expires within 30 (renew now) or 7 days (urgent).",
        expiring,
    )
    registry.register(
        "mdm_push_outbox_pending",
        "gauge",
        "Push requests stored but not yet handed to the job queue (Redis down?).",
        outbox,
    )
