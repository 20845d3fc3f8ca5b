"""Declarative Device Management in SQL: declarations, assignments, channels, the status channel.

Kept beside :mod:`mdmserver.storage.sql` on the same engine. It reads the core tables
(devices, enrollments, device_tags, command_queue, commands) but writes only its own. History
(status changes, whole reports) is bounded per enrollment: the oldest rows go as new ones come.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from mdmserver.storage.sql.schema import (
    command_queue,
    commands,
    ddm_assets,
    ddm_assignments,
    ddm_channels,
    ddm_declaration_states,
    ddm_declarations,
    ddm_revision,
    ddm_status_history,
    ddm_status_items,
    ddm_status_reports,
    device_tags,
    devices,
    enrollments,
)

ALL = "all"
SYNC_REQUEST_TYPE = "DeclarativeManagement"
HISTORY_KEPT = 500  # status changes kept per enrollment
REPORTS_KEPT = 20  # whole reports kept per enrollment


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class DeclarationRow:
    identifier: str
    type: str
    cls: str
    payload: dict[str, Any]
    server_token: str
    managed_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """What decides a channel's declaration set: its device, OS and tags."""

    enrollment_id: str
    device_id: str
    user_channel: bool
    product_name: str | None
    model: str | None
    os_version: str | None
    tags: tuple[str, ...]
    declarations_token: str | None


@dataclass(frozen=True, slots=True)
class DeclarationState:
    identifier: str
    cls: str
    active: bool | None
    valid: str | None
    server_token: str | None
    reasons: list[Any] | None
    updated_at: datetime


def _declaration(row: Any) -> DeclarationRow:
    return DeclarationRow(
        identifier=row.identifier,
        type=row.type,
        cls=row._mapping["class"],
        payload=json.loads(row.payload),
        server_token=row.server_token,
        managed_by=row.managed_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


Catalog = tuple[list[DeclarationRow], dict[str, list[str]]]


# What a channel's context is read from (ChannelContext), for one channel or many.
_CHANNEL_COLUMNS = (
    enrollments.c.id,
    enrollments.c.device_id,
    devices.c.product_name,
    devices.c.model,
    devices.c.os_version,
    ddm_channels.c.declarations_token,
)


def _channel_context(row: Any, tags: Iterable[str]) -> ChannelContext:
    return ChannelContext(
        enrollment_id=row.id,
        device_id=row.device_id,
        user_channel=row.id != row.device_id,
        product_name=row.product_name,
        model=row.model,
        os_version=row.os_version,
        tags=tuple(sorted(tags)),
        declarations_token=row.declarations_token,
    )


class DDMStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Every channel's set is computed from the whole catalog: kept in memory with the
        # revision it was read at, re-read only when another change (in any process) bumped it.
        self._catalog: tuple[int, Catalog] | None = None

    @staticmethod
    def _bump(conn: Connection) -> None:
        bumped = conn.execute(
            update(ddm_revision)
            .where(ddm_revision.c.id == 1)
            .values(revision=ddm_revision.c.revision + 1)
        )
        if not bumped.rowcount:
            conn.execute(insert(ddm_revision).values(id=1, revision=1))

    # Declarations -------------------------------------------------------------------------

    def put(
        self,
        identifier: str,
        declaration_type: str,
        cls: str,
        payload: Mapping[str, Any],
        server_token: str,
        now: datetime,
        *,
        managed_by: str = "admin",
    ) -> tuple[DeclarationRow, bool]:
        """Create or replace; whether anything changed (an identical save changes nothing)."""
        values = {
            "type": declaration_type,
            "class": cls,
            "payload": _dumps(payload),
            "server_token": server_token,
            "managed_by": managed_by,
            "updated_at": now,
        }
        try:
            return self._put(identifier, values, server_token, declaration_type, now)
        except IntegrityError:
            # Created meanwhile by another process (workers starting together write the
            # built-in declarations at once): now it exists, compare with it.
            return self._put(identifier, values, server_token, declaration_type, now)

    def _put(
        self,
        identifier: str,
        values: dict[str, Any],
        server_token: str,
        declaration_type: str,
        now: datetime,
    ) -> tuple[DeclarationRow, bool]:
        key = ddm_declarations.c.identifier == identifier
        with self.engine.begin() as conn:
            row = conn.execute(select(ddm_declarations).where(key)).first()
            if row is None:
                conn.execute(
                    insert(ddm_declarations).values(identifier=identifier, created_at=now, **values)
                )
                changed = True
            elif row.server_token != server_token or row.type != declaration_type:
                conn.execute(update(ddm_declarations).where(key).values(**values))
                changed = True
            else:
                changed = False
            if changed:
                self._bump(conn)
            saved = conn.execute(select(ddm_declarations).where(key)).one()
        return _declaration(saved), changed

    def get(self, identifier: str) -> DeclarationRow | None:
        query = select(ddm_declarations).where(ddm_declarations.c.identifier == identifier)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _declaration(row) if row is not None else None

    def declarations(self) -> list[DeclarationRow]:
        query = select(ddm_declarations).order_by(ddm_declarations.c.identifier)
        with self.engine.connect() as conn:
            return [_declaration(r) for r in conn.execute(query)]

    def delete(self, identifier: str) -> bool:
        with self.engine.begin() as conn:
            conn.execute(delete(ddm_assignments).where(ddm_assignments.c.identifier == identifier))
            done = conn.execute(
                delete(ddm_declarations).where(ddm_declarations.c.identifier == identifier)
            )
            self._bump(conn)
        return done.rowcount > 0

    def catalog(self) -> Catalog:
        """Every declaration and the targets of each (what a channel's set is made from)."""
        with self.engine.connect() as conn:
            revision = conn.execute(
                select(ddm_revision.c.revision).where(ddm_revision.c.id == 1)
            ).scalar()
            cached = self._catalog
            if cached is not None and cached[0] == revision:
                return cached[1]
            rows = [_declaration(r) for r in conn.execute(select(ddm_declarations))]
            targets: dict[str, list[str]] = {}
            for a in conn.execute(select(ddm_assignments.c.identifier, ddm_assignments.c.target)):
                targets.setdefault(a.identifier, []).append(a.target)
        if revision is not None:
            self._catalog = (int(revision), (rows, targets))
        return rows, targets

    # Assignments --------------------------------------------------------------------------

    def assign(self, identifier: str, target: str, now: datetime) -> bool:
        key = and_(ddm_assignments.c.identifier == identifier, ddm_assignments.c.target == target)
        with self.engine.begin() as conn:
            if conn.execute(select(ddm_assignments.c.target).where(key)).first() is not None:
                return False
            conn.execute(
                insert(ddm_assignments).values(identifier=identifier, target=target, created_at=now)
            )
            self._bump(conn)
        return True

    def unassign(self, identifier: str, target: str) -> bool:
        key = and_(ddm_assignments.c.identifier == identifier, ddm_assignments.c.target == target)
        with self.engine.begin() as conn:
            removed = conn.execute(delete(ddm_assignments).where(key)).rowcount > 0
            if removed:
                self._bump(conn)
        return removed

    def assignments(self, identifier: str) -> list[str]:
        query = select(ddm_assignments.c.target).where(ddm_assignments.c.identifier == identifier)
        with self.engine.connect() as conn:
            return sorted(conn.execute(query).scalars())

    # Channels -----------------------------------------------------------------------------

    def channel(self, enrollment_id: str) -> ChannelContext | None:
        query = (
            select(*_CHANNEL_COLUMNS)
            .select_from(
                enrollments.join(devices, devices.c.id == enrollments.c.device_id).outerjoin(
                    ddm_channels, ddm_channels.c.enrollment_id == enrollments.c.id
                )
            )
            .where(enrollments.c.id == enrollment_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            tags = conn.execute(
                select(device_tags.c.tag).where(device_tags.c.device_id == row.device_id)
            ).scalars()
            return _channel_context(row, tags)

    def enabled_channels(self, enrollment_ids: Sequence[str] | None = None) -> list[ChannelContext]:
        """The active channels DDM is on for (all, or those named), read in two queries: an
        admin change to every device reads them all at once, not one by one."""
        query = (
            select(*_CHANNEL_COLUMNS)
            .select_from(
                enrollments.join(devices, devices.c.id == enrollments.c.device_id).join(
                    ddm_channels, ddm_channels.c.enrollment_id == enrollments.c.id
                )
            )
            .where(enrollments.c.status == "active", ddm_channels.c.enabled_at.is_not(None))
            .order_by(enrollments.c.id)
        )
        if enrollment_ids is not None:
            query = query.where(enrollments.c.id.in_(list(enrollment_ids)))
        with self.engine.connect() as conn:
            rows = list(conn.execute(query))
            tags: dict[str, list[str]] = {}
            for t in conn.execute(select(device_tags.c.device_id, device_tags.c.tag)):
                tags.setdefault(t.device_id, []).append(t.tag)
        return [_channel_context(r, tags.get(r.device_id, ())) for r in rows]

    def active_channels(self, targets: Iterable[str] | None = None) -> list[str]:
        """Active enrollments (device and user channels) of devices a target set reaches;
        every active one when ``targets`` is None or holds "all"."""
        query = select(enrollments.c.id).where(enrollments.c.status == "active")
        wanted = set(targets) if targets is not None else {ALL}
        if ALL not in wanted:
            tags = [t.removeprefix("tag:") for t in wanted if t.startswith("tag:")]
            if not tags:
                return []
            query = query.where(
                enrollments.c.device_id.in_(
                    select(device_tags.c.device_id).where(device_tags.c.tag.in_(tags))
                )
            )
        with self.engine.connect() as conn:
            return sorted(conn.execute(query.order_by(enrollments.c.id)).scalars())

    def reached_devices(
        self, targets: Iterable[str]
    ) -> list[tuple[str | None, str | None, str | None]]:
        """(product name, model, OS version) of each enrolled device the targets reach."""
        wanted = set(targets)
        query = select(devices.c.product_name, devices.c.model, devices.c.os_version).where(
            devices.c.enrolled.is_(True)
        )
        if ALL not in wanted:
            tags = [t.removeprefix("tag:") for t in wanted if t.startswith("tag:")]
            if not tags:
                return []
            query = query.where(
                devices.c.id.in_(select(device_tags.c.device_id).where(device_tags.c.tag.in_(tags)))
            )
        with self.engine.connect() as conn:
            return [(r.product_name, r.model, r.os_version) for r in conn.execute(query.distinct())]

    def note_channel(
        self,
        enrollment_id: str,
        device_id: str,
        now: datetime,
        *,
        token: str | None = None,
        enabled: bool = False,
        synced: bool = False,
    ) -> None:
        values: dict[str, Any] = {}
        if token is not None:
            values["declarations_token"] = token
        if enabled:
            values["enabled_at"] = now
        if synced:
            values["synced_at"] = now
        with self.engine.begin() as conn:
            self._note(conn, enrollment_id, device_id, values)

    @staticmethod
    def _note(conn: Connection, enrollment_id: str, device_id: str, values: dict[str, Any]) -> None:
        key = ddm_channels.c.enrollment_id == enrollment_id
        if values and conn.execute(update(ddm_channels).where(key).values(**values)).rowcount:
            return
        if conn.execute(select(ddm_channels.c.enrollment_id).where(key)).first() is None:
            conn.execute(
                insert(ddm_channels).values(
                    enrollment_id=enrollment_id, device_id=device_id, **values
                )
            )

    def device_channels(self, device_id: str) -> list[str]:
        """The device's active enrollment channels."""
        query = select(enrollments.c.id).where(
            enrollments.c.device_id == device_id, enrollments.c.status == "active"
        )
        with self.engine.connect() as conn:
            return sorted(conn.execute(query).scalars())

    def enabled(self, enrollment_id: str) -> bool:
        query = select(ddm_channels.c.enabled_at).where(
            ddm_channels.c.enrollment_id == enrollment_id
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar() is not None

    def undelivered_syncs(self, enrollment_ids: Sequence[str]) -> set[str]:
        """Enrollments that still have a DeclarativeManagement command not yet sent: a
        further change needs no second command (the device fetches the current set)."""
        if not enrollment_ids:
            return set()
        query = (
            select(command_queue.c.enrollment_id)
            .join(commands, commands.c.uuid == command_queue.c.command_uuid)
            .where(commands.c.request_type == SYNC_REQUEST_TYPE, command_queue.c.status == "queued")
        )
        few = len(enrollment_ids) <= 500  # past that, all waiting ones (no huge IN list)
        if few:
            query = query.where(command_queue.c.enrollment_id.in_(list(enrollment_ids)))
        with self.engine.connect() as conn:
            found = set(conn.execute(query).scalars())
        return found if few else found & set(enrollment_ids)

    # Status channel -----------------------------------------------------------------------

    def status_items(self, enrollment_id: str) -> dict[str, tuple[Any, datetime]]:
        query = select(ddm_status_items).where(ddm_status_items.c.enrollment_id == enrollment_id)
        with self.engine.connect() as conn:
            return {r.item: (json.loads(r.value), r.updated_at) for r in conn.execute(query)}

    def record_status(
        self,
        enrollment_id: str,
        device_id: str,
        body: bytes,
        full: bool,
        known: Mapping[str, Any],
        items: Mapping[str, Any],
        removed: Iterable[str],
        now: datetime,
    ) -> dict[str, Any]:
        """Store the report, the new value of each item and a history row for each change,
        all in one transaction; the items whose value changed. ``known``: the values stored
        before (status_items), ``removed``: items a full report no longer has."""
        changed = {
            item: value
            for item, value in items.items()
            if item not in known or _dumps(known[item]) != _dumps(value)
        }
        gone = [item for item in removed if item in known]
        with self.engine.begin() as conn:
            conn.execute(
                insert(ddm_status_reports).values(
                    enrollment_id=enrollment_id,
                    full_report=full,
                    body=body.decode("utf-8", "replace"),
                    received_at=now,
                )
            )
            fresh = [{"item": i, "value": _dumps(v)} for i, v in changed.items() if i not in known]
            if fresh:
                conn.execute(
                    insert(ddm_status_items),
                    [{**row, "enrollment_id": enrollment_id, "updated_at": now} for row in fresh],
                )
            stale = [{"k": i, "v": _dumps(v)} for i, v in changed.items() if i in known]
            if stale:
                conn.execute(
                    update(ddm_status_items)
                    .where(
                        ddm_status_items.c.enrollment_id == enrollment_id,
                        ddm_status_items.c.item == bindparam("k"),
                    )
                    .values(value=bindparam("v"), updated_at=now),
                    stale,
                )
            if gone:
                conn.execute(
                    delete(ddm_status_items).where(
                        ddm_status_items.c.enrollment_id == enrollment_id,
                        ddm_status_items.c.item.in_(gone),
                    )
                )
            history = [{"item": i, "value": _dumps(v)} for i, v in changed.items()] + [
                {"item": i, "value": None} for i in gone
            ]
            if history:
                conn.execute(
                    insert(ddm_status_history),
                    [{**h, "enrollment_id": enrollment_id, "at": now} for h in history],
                )
                self._trim(conn, ddm_status_history, enrollment_id, HISTORY_KEPT)
            self._trim(conn, ddm_status_reports, enrollment_id, REPORTS_KEPT)
            self._note(conn, enrollment_id, device_id, {"status_at": now})
        return changed

    @staticmethod
    def _trim(conn: Connection, table: Any, enrollment_id: str, keep: int) -> None:
        """Drop all but the newest ``keep`` rows of one enrollment, in one statement."""
        mine = table.c.enrollment_id == enrollment_id
        cutoff = (
            select(table.c.id)
            .where(mine)
            .order_by(table.c.id.desc())
            .offset(keep)
            .limit(1)
            .scalar_subquery()
        )
        conn.execute(delete(table).where(mine, table.c.id <= cutoff))

    def status_history(self, enrollment_id: str, limit: int = 100) -> list[dict[str, Any]]:
        query = (
            select(ddm_status_history)
            .where(ddm_status_history.c.enrollment_id == enrollment_id)
            .order_by(ddm_status_history.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                {
                    "item": r.item,
                    "value": json.loads(r.value) if r.value is not None else None,
                    "at": r.at,
                }
                for r in conn.execute(query)
            ]

    def report_count(self, enrollment_id: str) -> int:
        query = select(func.count()).where(ddm_status_reports.c.enrollment_id == enrollment_id)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def save_declaration_states(
        self, enrollment_id: str, states: Sequence[Mapping[str, Any]], now: datetime
    ) -> None:
        """Replace the channel's declaration states with what management.declarations said."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(ddm_declaration_states).where(
                    ddm_declaration_states.c.enrollment_id == enrollment_id
                )
            )
            if states:
                conn.execute(
                    insert(ddm_declaration_states),
                    [{**s, "enrollment_id": enrollment_id, "updated_at": now} for s in states],
                )

    def declaration_states(self, enrollment_id: str) -> list[DeclarationState]:
        query = (
            select(ddm_declaration_states)
            .where(ddm_declaration_states.c.enrollment_id == enrollment_id)
            .order_by(ddm_declaration_states.c.identifier)
        )
        with self.engine.connect() as conn:
            return [
                DeclarationState(
                    identifier=r.identifier,
                    cls=r._mapping["class"],
                    active=r.active,
                    valid=r.valid,
                    server_token=r.server_token,
                    reasons=json.loads(r.reasons) if r.reasons else None,
                    updated_at=r.updated_at,
                )
                for r in conn.execute(query)
            ]

    # Assets -------------------------------------------------------------------------------

    def put_asset(
        self,
        asset_id: str,
        identifier: str,
        content_type: str,
        data: bytes,
        sha256: str,
        now: datetime,
    ) -> str:
        with self.engine.begin() as conn:
            conn.execute(
                insert(ddm_assets).values(
                    id=asset_id,
                    identifier=identifier,
                    content_type=content_type,
                    data=data,
                    sha256=sha256,
                    created_at=now,
                )
            )
        return asset_id

    def asset(self, asset_id: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(ddm_assets).where(ddm_assets.c.id == asset_id)).first()
