"""The job functions: push a batch of enrollments, deliver one webhook event to one URL;
and the features' (profile signing, app roll-outs).

Each takes the process's :class:`~mdmserver.jobs.context.JobContext` first, then plain values,
so both backends call the very same code.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from mdmserver.apps.rollout import ROLLOUT_TASK, rollout_task
from mdmserver.jobs.backend import PUSH_QUEUE, Job, backoff
from mdmserver.jobs.context import JobContext
from mdmserver.jobs.signing import signature_headers
from mdmserver.logs import get_logger
from mdmserver.profiles.signing import SIGN_TASK, sign_task
from mdmserver.push.outcome import InvalidPushTarget, OutcomeKind, PushTarget
from mdmserver.storage.sql.push_store import PushResult

log = get_logger("jobs")

# Outcomes stored per write while the rest of a job's pushes are in flight.
STORE_EVERY = 250
PUSH_RETRY_ROUNDS = 4  # 429/5xx/connection: retried this many times, 4x longer each time
WEBHOOK_RETRY_ROUNDS = 6
WEBHOOK_TIMEOUT = 10.0
WEBHOOK_ERROR_BODY = 300  # characters of a failing receiver's answer kept in the log


class WebhookFailed(RuntimeError):
    """The receiver did not accept the event (no answer, or not a 2xx): retried by the queue."""


def push(
    ctx: JobContext, enrollment_ids: Sequence[str], repush: bool = False, round_: int = 0
) -> dict[str, int]:
    """Wake these enrollments; record each outcome; retry only the transient failures."""
    rows = ctx.push_store.targets(enrollment_ids)
    if not rows:
        return {}
    client = ctx.push_client()
    if client is None:
        log.error(
            "push_certificate_missing",
            extra={
                "fields": {"enrollments": len(rows), "detail": "run mdmserver push-cert import"}
            },
        )
        ctx.push_store.record(
            [
                PushResult(r.enrollment_id, OutcomeKind.CERTIFICATE_ERROR, "NoCertificate")
                for r in rows
            ],
            repush=repush,
        )
        return {OutcomeKind.CERTIFICATE_ERROR.value: len(rows)}
    targets, rejected = [], []
    for row in rows:
        try:
            targets.append((row, PushTarget(row.token_hex, row.push_magic, row.topic)))
        except InvalidPushTarget:
            rejected.append(PushResult(row.enrollment_id, OutcomeKind.REJECTED, "InvalidTarget"))
    started = time.perf_counter()
    ctx.push_store.record(rejected, repush=repush)
    results: list[PushResult] = list(rejected)
    retry: list[str] = []
    # Outcomes are stored a chunk at a time while the rest of the batch is still in flight.
    chunks = client.push_in_chunks([target for _, target in targets], STORE_EVERY)
    for start, outcomes in zip(range(0, len(targets), STORE_EVERY), chunks, strict=True):
        stored, stale = [], []
        for (row, _), outcome in zip(targets[start : start + STORE_EVERY], outcomes, strict=True):
            stored.append(PushResult(row.enrollment_id, outcome.kind, outcome.reason))
            if outcome.kind is OutcomeKind.STALE_TOKEN:
                stale.append((row.enrollment_id, row.token_hex))
            elif outcome.kind is OutcomeKind.RETRY:
                retry.append(row.enrollment_id)
        # The outcome first: whoever sees a token marked stale also finds why.
        ctx.push_store.record(stored, repush=repush)
        ctx.push_store.mark_stale(stale)
        results += stored
    counts = Counter(str(r.outcome) for r in results)
    fields: dict[str, Any] = {
        "enrollments": len(rows),
        "ms": round((time.perf_counter() - started) * 1000, 1),
        "round": round_,
        "repush": repush,
        **counts,
    }
    log.info("push_batch", extra={"fields": fields})
    if counts.get(OutcomeKind.CERTIFICATE_ERROR.value):
        reasons = Counter(r.reason for r in results if r.outcome is OutcomeKind.CERTIFICATE_ERROR)
        log.error(
            "push_certificate_error",
            extra={
                "fields": {
                    "count": counts[OutcomeKind.CERTIFICATE_ERROR.value],
                    "reasons": dict(reasons),
                    "topic": client.topic,
                    "detail": "APNs refused the push certificate or topic: no device wakes",
                }
            },
        )
    if retry:
        _retry_later(ctx, retry, repush, round_)
    return dict(counts)


def _retry_later(ctx: JobContext, ids: list[str], repush: bool, round_: int) -> None:
    delays = backoff(ctx.config.retry_base_seconds, PUSH_RETRY_ROUNDS)
    if round_ >= len(delays):
        log.warning("push_retries_exhausted", extra={"fields": {"enrollments": len(ids)}})
        return  # the periodic re-push scan picks them up later
    ctx.backend.submit(
        [Job("push", (ids, repush, round_ + 1), queue=PUSH_QUEUE, delay=delays[round_])]
    )


def deliver_webhook(ctx: JobContext, url: str, body: bytes) -> int:
    """POST one event, signed at send time (a fresh timestamp on every attempt)."""
    headers = {"Content-Type": "application/json", "User-Agent": "mdmserver-webhooks/1"}
    if ctx.config.webhook_secret:
        headers.update(signature_headers(ctx.config.webhook_secret.encode(), body))
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        detail = exc.read(WEBHOOK_ERROR_BODY).decode("utf-8", "replace")
        raise WebhookFailed(f"{url} answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise WebhookFailed(f"{url} unreachable: {exc}") from None
    if not 200 <= status < 300:
        raise WebhookFailed(f"{url} answered {status}")
    return status


TASKS: dict[str, Callable[..., Any]] = {
    "push": push,
    "webhook": deliver_webhook,
    SIGN_TASK: sign_task,
    ROLLOUT_TASK: rollout_task,
}
