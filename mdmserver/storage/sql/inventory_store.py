"""Device inventory in SQL: normalised facts, each command's last raw answer, per-field history.

An answer is stored in one transaction with the history rows it causes, so the history never
disagrees with the facts. List fields are JSON text; their history keeps what was added and
removed (not the whole list), so a Mac with thousands of apps stays cheap to track.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine

from mdmserver.inventory.parse import FIELDS, LIST_FIELDS
from mdmserver.storage.sql.schema import (
    cert_bindings,
    compliance_state,
    devices,
    inventory,
    inventory_answers,
    inventory_history,
)

HISTORY_ITEMS_KEPT = 200


@dataclass(frozen=True, slots=True)
class Change:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class DeviceContext:
    """What the devices and cert_bindings tables say, beside the inventory."""

    device_id: str
    enrolled: bool
    user_enrollment: bool
    product_name: str | None
    model: str | None
    os_version: str | None
    last_seen_at: datetime | None
    cert_not_after: datetime | None


class InventoryStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def mark_requested(self, device_ids: Sequence[str], now: datetime) -> None:
        with self.engine.begin() as conn:
            for device_id in device_ids:
                if not self._exists(conn, device_id):
                    conn.execute(insert(inventory).values(device_id=device_id, requested_at=now))
                else:
                    conn.execute(
                        update(inventory)
                        .where(inventory.c.device_id == device_id)
                        .values(requested_at=now)
                    )

    def record_answer(
        self,
        device_id: str,
        request_type: str,
        command_uuid: str,
        body: bytes,
        facts: Mapping[str, Any],
        *,
        platform: str | None,
        now: datetime,
    ) -> list[Change]:
        """Store the raw answer and its facts; the changes it made to the facts."""
        with self.engine.begin() as conn:
            row = self._row(conn, device_id)
            old = _decode(row) if row is not None else {}
            changes = [
                Change(name, old.get(name), value)
                for name, value in facts.items()
                if name in FIELDS and old.get(name) != value
            ]
            values: dict[str, Any] = {
                c.field: _encode(c.field, c.new) for c in changes if c.field in FIELDS
            }
            values["updated_at"] = now
            if platform is not None:
                values["platform"] = platform
            if row is None:
                conn.execute(insert(inventory).values(device_id=device_id, **values))
            else:
                conn.execute(
                    update(inventory).where(inventory.c.device_id == device_id).values(**values)
                )
            self._save_answer(conn, device_id, request_type, command_uuid, body, now)
            if changes:
                conn.execute(
                    insert(inventory_history),
                    [_history_row(device_id, c, now) for c in changes],
                )
        return changes

    def facts(self, device_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = self._row(conn, device_id)
        return _decode(row) if row is not None else None

    def raw_answer(self, device_id: str, request_type: str) -> bytes | None:
        query = select(inventory_answers.c.body).where(
            inventory_answers.c.device_id == device_id,
            inventory_answers.c.request_type == request_type,
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def answered_at(self, device_id: str) -> dict[str, datetime]:
        """When each inventory command last answered: RequestType -> time received."""
        query = select(inventory_answers.c.request_type, inventory_answers.c.received_at).where(
            inventory_answers.c.device_id == device_id
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {row.request_type: row.received_at for row in rows}

    def history(self, device_id: str, limit: int = 100) -> list[dict[str, Any]]:
        query = (
            select(inventory_history)
            .where(inventory_history.c.device_id == device_id)
            .order_by(inventory_history.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                {
                    "at": row.at,
                    "field": row.field,
                    "old": json.loads(row.old_value) if row.old_value else None,
                    "new": json.loads(row.new_value) if row.new_value else None,
                }
                for row in conn.execute(query)
            ]

    def context(self, device_id: str) -> DeviceContext | None:
        query = select(*_context_columns()).where(devices.c.id == device_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _context(row) if row is not None else None

    def enrolled_states(
        self, chunk: int = 1000
    ) -> Iterator[tuple[DeviceContext, dict[str, Any], str | None]]:
        """Every enrolled device with its facts and stored compliance state, read in chunks
        (a policy preview judges the whole fleet without a query per device)."""
        columns = [
            *_context_columns(),
            compliance_state.c.state.label("compliance"),
            *(inventory.c[name] for name in ("device_id", "platform", *FIELDS)),
            inventory.c.requested_at,
            inventory.c.updated_at,
        ]
        joined = devices.outerjoin(inventory, inventory.c.device_id == devices.c.id).outerjoin(
            compliance_state, compliance_state.c.device_id == devices.c.id
        )
        after = ""
        while True:
            query = (
                select(*columns)
                .select_from(joined)
                .where(devices.c.enrolled.is_(True), devices.c.id > after)
                .order_by(devices.c.id)
                .limit(chunk)
            )
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            for row in rows:
                facts = _decode(row) if row.device_id is not None else {}
                yield _context(row), facts, row.compliance
            if len(rows) < chunk:
                return
            after = rows[-1].id

    def due_for_refresh(self, requested_before: datetime, limit: int = 1000) -> list[str]:
        """Enrolled devices whose inventory was last asked for before the cut-off (or never)."""
        query = (
            select(devices.c.id)
            .select_from(devices.outerjoin(inventory, inventory.c.device_id == devices.c.id))
            .where(
                devices.c.enrolled.is_(True),
                or_(
                    inventory.c.requested_at.is_(None),
                    inventory.c.requested_at < requested_before,
                ),
            )
            .order_by(inventory.c.requested_at.nulls_first(), devices.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [row.id for row in conn.execute(query)]

    def requested_at(self, device_id: str) -> datetime | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(inventory.c.requested_at).where(inventory.c.device_id == device_id)
            ).scalar()
        return value

    # Internals ---------------------------------------------------------------------------------

    @staticmethod
    def _exists(conn: Connection, device_id: str) -> bool:
        query = select(inventory.c.device_id).where(inventory.c.device_id == device_id)
        return conn.execute(query).first() is not None

    @staticmethod
    def _row(conn: Connection, device_id: str) -> Any:
        return conn.execute(select(inventory).where(inventory.c.device_id == device_id)).first()

    @staticmethod
    def _save_answer(
        conn: Connection,
        device_id: str,
        request_type: str,
        command_uuid: str,
        body: bytes,
        now: datetime,
    ) -> None:
        key = and_(
            inventory_answers.c.device_id == device_id,
            inventory_answers.c.request_type == request_type,
        )
        values = {"command_uuid": command_uuid, "body": body, "received_at": now}
        if not conn.execute(update(inventory_answers).where(key).values(**values)).rowcount:
            conn.execute(
                insert(inventory_answers).values(
                    device_id=device_id, request_type=request_type, **values
                )
            )


def _context_columns() -> list[Any]:
    """What DeviceContext is read from: the device row and its identity's expiry."""
    not_after = (
        select(func.max(cert_bindings.c.not_after))
        .where(cert_bindings.c.device_id == devices.c.id)
        .scalar_subquery()
    )
    return [
        devices.c.id,
        devices.c.enrolled,
        devices.c.user_enrollment,
        devices.c.product_name,
        devices.c.model,
        devices.c.os_version,
        devices.c.last_seen_at,
        not_after.label("cert_not_after"),
    ]


def _context(row: Any) -> DeviceContext:
    return DeviceContext(
        device_id=row.id,
        enrolled=bool(row.enrolled),
        user_enrollment=bool(row.user_enrollment),
        product_name=row.product_name,
        model=row.model,
        os_version=row.os_version,
        last_seen_at=row.last_seen_at,
        cert_not_after=row.cert_not_after,
    )


def _encode(name: str, value: Any) -> Any:
    if name in LIST_FIELDS:
        return json.dumps(value, separators=(",", ":")) if value is not None else None
    return value


def _decode(row: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {"platform": row.platform}
    for name in FIELDS:
        value = getattr(row, name)
        facts[name] = json.loads(value) if name in LIST_FIELDS and value else value
    facts["requested_at"] = row.requested_at
    facts["updated_at"] = row.updated_at
    return facts


def _history_row(device_id: str, change: Change, now: datetime) -> dict[str, Any]:
    old, new = change.old, change.new
    if change.field in LIST_FIELDS:
        before = {json.dumps(item, sort_keys=True) for item in old or []}
        after = {json.dumps(item, sort_keys=True) for item in new or []}
        old = [json.loads(item) for item in sorted(before - after)][:HISTORY_ITEMS_KEPT]
        new = [json.loads(item) for item in sorted(after - before)][:HISTORY_ITEMS_KEPT]
    return {
        "device_id": device_id,
        "at": now,
        "field": change.field,
        "old_value": json.dumps(old, default=str) if old is not None else None,
        "new_value": json.dumps(new, default=str) if new is not None else None,
    }


def forget_facts(conn: Connection, device_id: str) -> None:
    """Blank the device's facts (inside the caller's transaction), keeping their history and
    when inventory was last asked for. A new enrollment of the device starts from nothing: what
    the previous identity reported no longer speaks for whoever enrolls now."""
    blank = {name: None for name in FIELDS if name in inventory.c}
    conn.execute(
        update(inventory).where(inventory.c.device_id == device_id).values(**blank, updated_at=None)
    )
