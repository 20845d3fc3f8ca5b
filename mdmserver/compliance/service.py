"""Compliance evaluation with storage: judge a device, store the state, announce a change and
start remediation. Runs inside device requests (from inventory hooks) and on a schedule
(``evaluate_stale``), so a silent device falls out of compliance without saying anything.

A change of state is stored in ``compliance_history``, logged as ``compliance_changed`` and,
when webhooks are configured (issue #4), sent as an ``mdm.compliance_changed`` event through
the same emitter as the protocol events.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mdmserver.catalog.platforms import platform_of
from mdmserver.compliance.evaluate import Evaluation, evaluate
from mdmserver.compliance.policy import Policy, load_policy, policy_from
from mdmserver.compliance.remediation import Remediator
from mdmserver.compliance.rules import DeviceState
from mdmserver.logs import get_logger
from mdmserver.storage.ports import CompliancePort, InventoryPort
from mdmserver.storage.sql.inventory_store import DeviceContext

log = get_logger("compliance")

COMPLIANCE_EVENT = "mdm.compliance_changed"
POLICY_CACHE_SECONDS = 5.0

Emit = Callable[[bytes], None]


class PolicySource:
    """The effective policy: the API's (in the database) over the file's. Cached for a few
    seconds, so an access decision never reads the file or the policy row."""

    def __init__(self, store: CompliancePort, path: Path) -> None:
        self.store = store
        self.path = path
        self._cached: tuple[float, Policy, str] | None = None
        self._lock = threading.Lock()

    def current(self) -> Policy:
        return self._load()[0]

    def source(self) -> str:
        return self._load()[1]

    def _load(self) -> tuple[Policy, str]:
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] < POLICY_CACHE_SECONDS:
            return cached[1], cached[2]
        with self._lock:
            stored = self.store.policy()
            if stored is not None:
                policy, source = policy_from(stored[0]), "api"
            else:
                policy = load_policy(self.path)
                source = str(self.path) if self.path.is_file() else "defaults"
            self._cached = (time.monotonic(), policy, source)
            return policy, source

    def set(self, data: Mapping[str, Any] | None, actor: str) -> Policy:
        policy = policy_from(data) if data is not None else load_policy(self.path)
        self.store.set_policy(policy.to_dict() if data is not None else None, actor, _now())
        self._cached = None
        return policy


class ComplianceService:
    def __init__(
        self,
        inventory: InventoryPort,
        store: CompliancePort,
        policies: PolicySource,
        remediator: Remediator,
        emit: Emit | None = None,
    ) -> None:
        self.inventory = inventory
        self.store = store
        self.policies = policies
        self.remediator = remediator
        self.emit = emit

    def evaluate(
        self, device_id: str, now: datetime | None = None, *, in_request: bool = False
    ) -> Evaluation | None:
        """Judge one device and store the outcome; None for an unknown device.

        ``in_request``: the device is speaking right now, so it counts as seen now (its stored
        last-seen time is written only after the request).
        """
        now = now or _now()
        context = self.inventory.context(device_id)
        if context is None:
            return None
        facts = self.inventory.facts(device_id) or {}
        state = device_state(context, facts, now, in_request=in_request)
        platform = state.platform
        policy = self.policies.current()
        evaluation = evaluate(policy, state)
        results = [r.to_dict() for r in evaluation.results]
        previous = self.store.save(
            device_id, evaluation.state.value, evaluation.reasons, results, now
        )
        if previous is None or previous.state != evaluation.state.value:
            self._announce(device_id, previous.state if previous else None, evaluation, now)
        stored = self.store.state(device_id)
        self.remediator.apply(
            device_id, platform, policy, evaluation, stored, now, in_request=in_request
        )
        return evaluation

    def evaluate_stale(self, now: datetime | None = None) -> int:
        """Re-judge devices that went silent past the limit or whose identity certificate is
        about to expire; returns how many were evaluated."""
        now = now or _now()
        policy = self.policies.current()
        candidates: set[str] = set()
        if policy.max_checkin_age_hours is not None:
            cutoff = now - timedelta(hours=policy.max_checkin_age_hours)
            candidates.update(self.store.stale_candidates(cutoff))
        if policy.identity_cert_min_days is not None:
            horizon = now + timedelta(days=policy.identity_cert_min_days)
            candidates.update(self.store.expiring_candidates(horizon))
        for device_id in sorted(candidates):
            try:
                self.evaluate(device_id, now)
            except Exception:
                log.exception("evaluate_failed", extra={"fields": {"device_id": device_id}})
        log.info("evaluate_stale", extra={"fields": {"evaluated": len(candidates)}})
        return len(candidates)

    def _announce(
        self, device_id: str, previous: str | None, evaluation: Evaluation, now: datetime
    ) -> None:
        fields = {
            "device_id": device_id,
            "previous_state": previous,
            "state": evaluation.state.value,
            "reasons": evaluation.reasons,
        }
        log.info("compliance_changed", extra={"fields": fields})
        if self.emit is None:
            return
        event = {
            "id": str(uuid.uuid4()),
            "type": COMPLIANCE_EVENT,
            "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            **fields,
            "compliant": evaluation.compliant,
        }
        try:
            self.emit(json.dumps(event, separators=(",", ":")).encode())
        except Exception:
            log.exception("compliance_event_lost", extra={"fields": {"device_id": device_id}})


def device_state(
    context: DeviceContext, facts: Mapping[str, Any], now: datetime, *, in_request: bool = False
) -> DeviceState:
    """What the rules judge: inventory facts over what Authenticate said, and when the device
    was last seen (``in_request``: it is speaking now; its last-seen is written after)."""
    merged = {"os_version": context.os_version, **{k: v for k, v in facts.items() if v is not None}}
    return DeviceState(
        platform=facts.get("platform") or platform_of(context.product_name, context.model),
        facts=merged,
        last_seen_at=now if in_request else context.last_seen_at,
        cert_not_after=context.cert_not_after,
        now=now,
    )


@dataclass(frozen=True)
class PolicyPreview:
    """How many enrolled devices a candidate policy would move, judged on what is stored."""

    devices: int
    to_compliant: int
    to_noncompliant: int
    to_unknown: int

    @property
    def unchanged(self) -> int:
        return self.devices - self.to_compliant - self.to_noncompliant - self.to_unknown


def preview_policy(
    inventory: InventoryPort, policy: Policy, now: datetime | None = None
) -> PolicyPreview:
    """Judge every enrolled device under ``policy`` without storing anything."""
    now = now or _now()
    counts = {"compliant": 0, "noncompliant": 0, "unknown": 0}
    total = 0
    for context, facts, stored in inventory.enrolled_states():
        total += 1
        state = evaluate(policy, device_state(context, facts, now)).state.value
        if state != (stored or "unknown"):
            counts[state] += 1
    return PolicyPreview(total, counts["compliant"], counts["noncompliant"], counts["unknown"])


def _now() -> datetime:
    return datetime.now(UTC)
