"""Compliance in SQL: each device's current state, its history, remediations, the API-set
policy, and the one-query lookups the device-trust API runs on every access decision."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, desc, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine

from mdmserver.storage.base import pick_by_serial
from mdmserver.storage.sql.enrollment_store import ACCESS
from mdmserver.storage.sql.schema import (
    cert_bindings,
    compliance_history,
    compliance_policy,
    compliance_state,
    devices,
    issued_certs,
    remediations,
)
from mdmserver.storage.sql.types import utcnow

OPEN_REMEDIATION = ("requested", "queued")


@dataclass(frozen=True, slots=True)
class StoredState:
    state: str
    reasons: list[str]
    results: list[dict[str, str]]
    evaluated_at: datetime
    changed_at: datetime
    noncompliant_since: datetime | None


@dataclass(frozen=True, slots=True)
class TrustRow:
    device_id: str
    enrolled: bool
    last_seen_at: datetime | None
    state: str | None
    reasons: list[str]
    evaluated_at: datetime | None
    udid_attested: bool = False


_TRUST_COLUMNS = (
    devices.c.id,
    devices.c.enrolled,
    devices.c.last_seen_at,
    compliance_state.c.state,
    compliance_state.c.reasons,
    compliance_state.c.evaluated_at,
    devices.c.udid_attested,
)
_TRUST_FROM = devices.outerjoin(compliance_state, compliance_state.c.device_id == devices.c.id)


class ComplianceStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # State -----------------------------------------------------------------------------------

    def state(self, device_id: str) -> StoredState | None:
        query = select(compliance_state).where(compliance_state.c.device_id == device_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return StoredState(
            state=row.state,
            reasons=json.loads(row.reasons),
            results=json.loads(row.results),
            evaluated_at=row.evaluated_at,
            changed_at=row.changed_at,
            noncompliant_since=row.noncompliant_since,
        )

    def save(
        self,
        device_id: str,
        state: str,
        reasons: list[str],
        results: list[dict[str, str]],
        now: datetime,
    ) -> StoredState | None:
        """Store the evaluation; the previous state (None for a first evaluation)."""
        previous = self.state(device_id)
        changed = previous is None or previous.state != state
        values: dict[str, Any] = {
            "state": state,
            "reasons": json.dumps(reasons),
            "results": json.dumps(results),
            "evaluated_at": now,
        }
        if changed:
            values["changed_at"] = now
            values["noncompliant_since"] = now if state == "noncompliant" else None
        with self.engine.begin() as conn:
            if previous is None:
                conn.execute(insert(compliance_state).values(device_id=device_id, **values))
            else:
                conn.execute(
                    update(compliance_state)
                    .where(compliance_state.c.device_id == device_id)
                    .values(**values)
                )
            if changed or (previous is not None and previous.reasons != reasons):
                conn.execute(
                    insert(compliance_history).values(
                        device_id=device_id,
                        at=now,
                        previous_state=previous.state if previous else None,
                        state=state,
                        reasons=json.dumps(reasons),
                    )
                )
        return previous

    def history(self, device_id: str, limit: int = 100) -> list[dict[str, Any]]:
        query = (
            select(compliance_history)
            .where(compliance_history.c.device_id == device_id)
            .order_by(desc(compliance_history.c.id))
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                {
                    "at": row.at,
                    "previous_state": row.previous_state,
                    "state": row.state,
                    "reasons": json.loads(row.reasons),
                }
                for row in conn.execute(query)
            ]

    def stale_candidates(self, seen_before: datetime, limit: int = 10_000) -> list[str]:
        """Enrolled devices silent since ``seen_before`` that were not judged since they fell
        silent (each stale device is re-evaluated once, not on every run)."""
        query = (
            select(devices.c.id)
            .select_from(_TRUST_FROM)
            .where(
                devices.c.enrolled.is_(True),
                or_(devices.c.last_seen_at.is_(None), devices.c.last_seen_at < seen_before),
                or_(
                    compliance_state.c.state.is_(None),
                    compliance_state.c.state != "noncompliant",
                    compliance_state.c.evaluated_at < seen_before,
                ),
            )
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [row.id for row in conn.execute(query)]

    def expiring_candidates(self, expires_before: datetime, limit: int = 10_000) -> list[str]:
        """Enrolled devices whose newest identity certificate expires before the cut-off."""
        query = (
            select(devices.c.id)
            .select_from(_TRUST_FROM.join(cert_bindings, cert_bindings.c.device_id == devices.c.id))
            .where(
                devices.c.enrolled.is_(True),
                cert_bindings.c.not_after < expires_before,
                or_(compliance_state.c.state.is_(None), compliance_state.c.state != "noncompliant"),
            )
            .distinct()
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [row.id for row in conn.execute(query)]

    # Trust lookups -----------------------------------------------------------------------------

    def trust_by_device(self, key: str) -> TrustRow | None:
        """By UDID (or EnrollmentID), else by serial number: the one enrolled device with it
        (AmbiguousSerial when several are), or the most recently seen one."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(*_TRUST_COLUMNS).select_from(_TRUST_FROM).where(devices.c.id == key)
            ).first()
            if row is None:
                rows = conn.execute(
                    select(*_TRUST_COLUMNS)
                    .select_from(_TRUST_FROM)
                    .where(devices.c.serial_number == key)
                    .order_by(devices.c.last_seen_at.desc().nulls_last(), devices.c.id)
                ).all()
                row = pick_by_serial(key, rows)
        return _trust(row) if row is not None else None

    def trust_by_fingerprint(self, fingerprint: str) -> TrustRow | None:
        """The device a certificate speaks for: its bound MDM identity, or an unrevoked,
        unexpired access identity our SCEP server issued to it."""
        bound = (
            select(*_TRUST_COLUMNS)
            .select_from(_TRUST_FROM.join(cert_bindings, cert_bindings.c.device_id == devices.c.id))
            .where(cert_bindings.c.fingerprint == fingerprint)
        )
        access = (
            select(*_TRUST_COLUMNS)
            .select_from(_TRUST_FROM.join(issued_certs, issued_certs.c.device_id == devices.c.id))
            .where(
                issued_certs.c.fingerprint == fingerprint,
                issued_certs.c.method == ACCESS,
                issued_certs.c.revoked.is_(False),
                issued_certs.c.not_after > utcnow(),
            )
        )
        with self.engine.connect() as conn:
            row = conn.execute(bound).first() or conn.execute(access).first()
        return _trust(row) if row is not None else None

    # Policy ------------------------------------------------------------------------------------

    def policy(self) -> tuple[dict[str, Any], datetime] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(compliance_policy).where(compliance_policy.c.id == 1)).first()
        return (json.loads(row.body), row.updated_at) if row else None

    def set_policy(self, body: dict[str, Any] | None, actor: str, now: datetime) -> None:
        """Store the API's policy; None removes it (the file applies again)."""
        with self.engine.begin() as conn:
            conn.execute(compliance_policy.delete().where(compliance_policy.c.id == 1))
            if body is not None:
                conn.execute(
                    insert(compliance_policy).values(
                        id=1, body=json.dumps(body), updated_at=now, updated_by=actor[:128]
                    )
                )

    # Remediation -------------------------------------------------------------------------------

    def open_remediation(self, device_id: str, kind: str, detail: str) -> dict[str, Any] | None:
        query = select(remediations).where(
            remediations.c.device_id == device_id,
            remediations.c.kind == kind,
            remediations.c.detail == detail[:256],
            remediations.c.status.in_(OPEN_REMEDIATION),
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row is not None else None

    def add_remediation(
        self,
        device_id: str,
        kind: str,
        detail: str,
        status: str,
        now: datetime,
        command_uuid: str | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(remediations).values(
                    device_id=device_id,
                    kind=kind,
                    detail=detail[:256],
                    status=status,
                    command_uuid=command_uuid,
                    created_at=now,
                    updated_at=now,
                )
            )

    def resolve_remediations(
        self, device_id: str, now: datetime, kinds: Sequence[str] | None = None
    ) -> int:
        where = [remediations.c.device_id == device_id, remediations.c.status.in_(OPEN_REMEDIATION)]
        if kinds is not None:
            where.append(remediations.c.kind.in_(list(kinds)))
        with self.engine.begin() as conn:
            return conn.execute(
                update(remediations).where(and_(*where)).values(status="resolved", updated_at=now)
            ).rowcount

    def remediations(self, device_id: str) -> list[dict[str, Any]]:
        query = (
            select(remediations)
            .where(remediations.c.device_id == device_id)
            .order_by(desc(remediations.c.id))
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]


def reset_state(conn: Connection, device_id: str, reason: str, now: datetime) -> None:
    """Put a judged device back to "unknown" (inside the caller's transaction), with the
    reason, until fresh inventory is judged: used when the device enrolls again."""
    row = conn.execute(
        select(compliance_state.c.state).where(compliance_state.c.device_id == device_id)
    ).first()
    if row is None:
        return  # never judged: the trust answer already says "not evaluated yet"
    values: dict[str, Any] = {
        "state": "unknown",
        "reasons": json.dumps([reason]),
        "results": "[]",
        "evaluated_at": now,
        "noncompliant_since": None,
    }
    if row.state != "unknown":
        values["changed_at"] = now
    conn.execute(
        update(compliance_state).where(compliance_state.c.device_id == device_id).values(**values)
    )
    if row.state != "unknown":
        conn.execute(
            insert(compliance_history).values(
                device_id=device_id,
                at=now,
                previous_state=row.state,
                state="unknown",
                reasons=json.dumps([reason]),
            )
        )


def _trust(row: Any) -> TrustRow:
    return TrustRow(
        device_id=row.id,
        enrolled=bool(row.enrolled),
        last_seen_at=row.last_seen_at,
        state=row.state,
        reasons=json.loads(row.reasons) if row.reasons else [],
        evaluated_at=row.evaluated_at,
        udid_attested=bool(row.udid_attested),
    )
