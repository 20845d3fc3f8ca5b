"""Device trust for relying services (conditional access): is this device managed, and is it
compliant right now? One indexed query per question.

The stored state is re-checked against the check-in limit at read time, so a device that went
silent is refused even before the scheduled ``evaluate_stale`` records it. An unknown or
unenrolled device gets ``managed: false, compliant: false`` and nothing else; a serial number
that several enrolled devices report gets the same, with a reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mdmserver.compliance.service import PolicySource
from mdmserver.storage.base import AmbiguousSerial
from mdmserver.storage.ports import CompliancePort
from mdmserver.storage.sql.compliance_store import TrustRow

FINGERPRINT = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class TrustAnswer:
    managed: bool
    compliant: bool
    device_id: str | None = None
    reasons: list[str] = field(default_factory=list)
    evaluated_at: datetime | None = None
    # "attested": the identity was issued over the air for the UDID Apple's device identity
    # vouched for (issue #12); "token": enrolled with a token, the UDID is the device's claim.
    identity: str = "token"

    def to_dict(self) -> dict[str, Any]:
        if not self.managed:
            unmanaged: dict[str, Any] = {"managed": False, "compliant": False}
            if self.reasons:
                unmanaged["reasons"] = self.reasons
            return unmanaged
        return {
            "managed": True,
            "compliant": self.compliant,
            "reasons": self.reasons,
            "evaluated_at": _iso(self.evaluated_at),
            "identity": self.identity,
        }


UNMANAGED = TrustAnswer(managed=False, compliant=False)


class TrustService:
    def __init__(self, store: CompliancePort, policies: PolicySource) -> None:
        self.store = store
        self.policies = policies

    def by_device(self, key: str, now: datetime | None = None) -> TrustAnswer:
        if not key or len(key) > 128:
            return UNMANAGED
        try:
            row = self.store.trust_by_device(key)
        except AmbiguousSerial as exc:
            # Whoever enrolled last with a claimed serial must not decide the answer.
            count = len(exc.candidates.get(key, ()))
            reason = f"serial number matches {count} enrolled devices; ask by UDID"
            return TrustAnswer(managed=False, compliant=False, reasons=[reason])
        return self._answer(row, now)

    def by_fingerprint(self, fingerprint: str, now: datetime | None = None) -> TrustAnswer:
        fingerprint = fingerprint.strip().lower().replace(":", "")
        if not FINGERPRINT.fullmatch(fingerprint):
            return UNMANAGED
        return self._answer(self.store.trust_by_fingerprint(fingerprint), now)

    def _answer(self, row: TrustRow | None, now: datetime | None) -> TrustAnswer:
        if row is None or not row.enrolled:
            return UNMANAGED
        reasons = list(row.reasons)
        compliant = row.state == "compliant"
        if row.state is None:
            reasons = ["not evaluated yet"]
        limit = self.policies.current().max_checkin_age_hours
        if compliant and limit is not None and row.last_seen_at is not None:
            silent = (now or datetime.now(UTC)) - row.last_seen_at
            if silent > timedelta(hours=limit):
                compliant = False
                reasons.append(f"last check-in {silent.total_seconds() / 3600:.0f} h ago")
        identity = "attested" if row.udid_attested else "token"
        return TrustAnswer(True, compliant, row.device_id, reasons, row.evaluated_at, identity)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
