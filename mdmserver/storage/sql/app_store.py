"""The app catalog and the Apps and Books mirror in SQL, and the stored app files on disk.

Reads the core tables (device_tags, enrollments) to answer "may this device fetch this app";
writes only its own (apps, app_assignments, vpp_assets, vpp_licenses, vpp_events).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from mdmserver.storage.sql.schema import (
    app_assignments,
    app_device_lists,
    app_device_states,
    apps,
    command_queue,
    commands,
    ddm_channels,
    device_tags,
    devices,
    enrollments,
    vpp_assets,
    vpp_events,
    vpp_licenses,
)
from mdmserver.storage.sql.types import utcnow

ALL = "all"
LIST = "ManagedApplicationList"
_UNANSWERED = ("queued", "sent", "notnow")
NOT_ASSOCIATED = 9619  # Apple: "License not associated."


class AppNameTaken(ValueError):
    """Another app already has this name."""


@dataclass(frozen=True, slots=True)
class AppRow:
    id: str
    name: str
    kind: str
    bundle_id: str
    adam_id: str | None
    version: str | None
    file_name: str | None
    file_size: int | None
    file_sha256: str | None
    download_url: str | None
    manifest_url: str | None
    manifest: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Assignment:
    """One app assigned to one target, with what its install command carries."""

    target: str
    behaviour: str
    management_flags: int | None  # None: the default (1, remove with MDM)
    configuration: dict[str, Any] | None  # the managed app configuration


@dataclass(frozen=True, slots=True)
class WantedApp:
    """An app assigned to a device: the assignment that decides for it (required over
    available, a tag's over all's)."""

    app: AppRow
    assignment: Assignment


@dataclass(frozen=True, slots=True)
class LicenseRow:
    adam_id: str
    serial_number: str
    pricing_param: str
    status: str
    event_id: str | None
    error: str | None
    updated_at: datetime


class AppStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # Catalog ---------------------------------------------------------------------------------

    def create(self, values: Mapping[str, Any], app_id: str | None = None) -> AppRow:
        now = utcnow()
        row = {
            "id": app_id or new_app_id(),
            **values,
            "manifest": json.dumps(values["manifest"]) if values.get("manifest") else None,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(apps).values(**row))
        except IntegrityError:
            raise AppNameTaken(f"an app named {values['name']!r} already exists") from None
        found = self.get(row["id"])
        assert found is not None
        return found

    def get(self, key: str) -> AppRow | None:
        """By id or by name."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(apps).where(or_(apps.c.id == key, apps.c.name == key))
            ).first()
        return _app(row) if row else None

    def all(self) -> list[AppRow]:
        with self.engine.connect() as conn:
            return [_app(r) for r in conn.execute(select(apps).order_by(apps.c.name))]

    def delete(self, app_id: str) -> bool:
        with self.engine.begin() as conn:
            conn.execute(delete(app_assignments).where(app_assignments.c.app_id == app_id))
            conn.execute(delete(app_device_states).where(app_device_states.c.app_id == app_id))
            return conn.execute(delete(apps).where(apps.c.id == app_id)).rowcount > 0

    def assign(
        self,
        app_id: str,
        target: str,
        behaviour: str,
        *,
        management_flags: int | None = None,
        configuration: Mapping[str, Any] | None = None,
    ) -> None:
        """Add or change one assignment (its behaviour, flags and configuration are replaced)."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(app_assignments).where(
                    app_assignments.c.app_id == app_id, app_assignments.c.target == target
                )
            )
            conn.execute(
                insert(app_assignments).values(
                    app_id=app_id,
                    target=target,
                    behaviour=behaviour,
                    management_flags=management_flags,
                    configuration=json.dumps(configuration) if configuration is not None else None,
                    created_at=utcnow(),
                )
            )

    def unassign(self, app_id: str, target: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(app_assignments).where(
                    app_assignments.c.app_id == app_id, app_assignments.c.target == target
                )
            )
            return result.rowcount > 0

    def assignments(self, app_id: str) -> dict[str, str]:
        """target -> behaviour."""
        query = select(app_assignments.c.target, app_assignments.c.behaviour).where(
            app_assignments.c.app_id == app_id
        )
        with self.engine.connect() as conn:
            return {t: b for t, b in conn.execute(query).all()}

    def assignment_details(self, app_id: str) -> list[Assignment]:
        query = (
            select(app_assignments)
            .where(app_assignments.c.app_id == app_id)
            .order_by(app_assignments.c.target)
        )
        with self.engine.connect() as conn:
            return [_assignment(r) for r in conn.execute(query)]

    def is_assigned(self, app_id: str, device_id: str) -> bool:
        """Assigned to every device, or to one of this device's tags."""
        with self.engine.connect() as conn:
            return _is_assigned(conn, app_id, device_id)

    # Desired state per device -------------------------------------------------------------

    def assigned_to(self, device_id: str) -> dict[str, tuple[AppRow, str]]:
        """app id -> (app, behaviour) for every app assigned to all or to one of the device's
        tags; "required" wins over "available" when both apply."""
        with self.engine.connect() as conn:
            targets = [ALL, *_device_tag_targets(conn, device_id)]
            rows = conn.execute(
                select(apps, app_assignments.c.behaviour)
                .join(app_assignments, app_assignments.c.app_id == apps.c.id)
                .where(app_assignments.c.target.in_(targets))
            ).all()
        found: dict[str, tuple[AppRow, str]] = {}
        for row in rows:
            values = row._asdict()
            behaviour = values.pop("behaviour")
            app = _app_values(values)
            if app.id not in found or behaviour == "required":
                found[app.id] = (app, behaviour)
        return found

    def wanted_by(self, device_id: str) -> dict[str, WantedApp]:
        """app id -> the app and the assignment that decides for this device: "required"
        over "available", then a tag's assignment over "all" (the more specific one), then
        the first tag by name."""
        with self.engine.connect() as conn:
            targets = [ALL, *_device_tag_targets(conn, device_id)]
            rows = conn.execute(
                select(apps, *[c.label(f"a_{c.name}") for c in app_assignments.c])
                .join(app_assignments, app_assignments.c.app_id == apps.c.id)
                .where(app_assignments.c.target.in_(targets))
            ).all()
        found: dict[str, WantedApp] = {}
        for row in rows:
            values = row._asdict()
            own = {k[2:]: values.pop(k) for k in list(values) if k.startswith("a_")}
            wanted = WantedApp(_app_values(values), _assignment_values(own))
            if wanted.app.id not in found or _rank(wanted.assignment) < _rank(
                found[wanted.app.id].assignment
            ):
                found[wanted.app.id] = wanted
        return found

    def catalog_bundle_ids(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(select(apps.c.bundle_id)).scalars())

    def has_license(self, adam_id: str, serial_number: str | None) -> bool:
        if not serial_number:
            return False
        query = select(vpp_licenses.c.status).where(
            vpp_licenses.c.adam_id == adam_id,
            vpp_licenses.c.serial_number == serial_number,
            vpp_licenses.c.status == "assigned",
        )
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def device_facts(self, device_id: str) -> dict[str, Any]:
        """Serial, model, OS version, User Enrollment, and whether DDM is on for the device
        channel (what decides the install command's keys and the app's delivery channel)."""
        query = (
            select(
                devices.c.serial_number,
                devices.c.product_name,
                devices.c.model,
                devices.c.os_version,
                devices.c.user_enrollment,
                ddm_channels.c.enabled_at,
            )
            .select_from(
                devices.outerjoin(ddm_channels, ddm_channels.c.enrollment_id == devices.c.id)
            )
            .where(devices.c.id == device_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return {}
        facts = dict(row._asdict())
        facts["ddm_enabled"] = facts.pop("enabled_at") is not None
        return facts

    def device_states(self, device_id: str) -> dict[str, dict[str, Any]]:
        query = select(app_device_states).where(app_device_states.c.device_id == device_id)
        with self.engine.connect() as conn:
            return {r.app_id: _state_row(r) for r in conn.execute(query)}

    def app_states(self, app_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        query = (
            select(app_device_states)
            .where(app_device_states.c.app_id == app_id)
            .order_by(app_device_states.c.device_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_state_row(r) for r in conn.execute(query)]

    def set_state(
        self,
        device_id: str,
        app_id: str,
        status: str,
        *,
        command_uuid: str | None = None,
        error: str | None = None,
        keep_command: bool = False,
        attempts: int | None = None,
        channel: str | None = None,
        installed_version: str | None = None,
        configuration_sha256: str | None = None,
    ) -> None:
        """``channel``, ``installed_version`` and ``configuration_sha256``: None leaves what
        is stored."""
        values: dict[str, Any] = {"status": status, "error": error, "updated_at": utcnow()}
        if attempts is not None:
            values["attempts"] = attempts
        if channel is not None:
            values["channel"] = channel
        if installed_version is not None:
            values["installed_version"] = installed_version[:64]
        if configuration_sha256 is not None:
            values["configuration_sha256"] = configuration_sha256
        if not keep_command:
            values["command_uuid"] = command_uuid
        key = (app_device_states.c.device_id == device_id) & (app_device_states.c.app_id == app_id)
        with self.engine.begin() as conn:
            if conn.execute(update(app_device_states).where(key).values(**values)).rowcount == 0:
                values.setdefault("command_uuid", command_uuid)
                conn.execute(
                    insert(app_device_states).values(device_id=device_id, app_id=app_id, **values)
                )

    def forget_state(self, device_id: str, app_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(app_device_states).where(
                    app_device_states.c.device_id == device_id,
                    app_device_states.c.app_id == app_id,
                )
            )

    def state_for_command(self, device_id: str, command_uuid: str) -> str | None:
        """The app id a command was sent for."""
        query = select(app_device_states.c.app_id).where(
            app_device_states.c.device_id == device_id,
            app_device_states.c.command_uuid == command_uuid,
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    # Apps and Books ----------------------------------------------------------------------------

    def save_assets(self, found: Iterable[Mapping[str, Any]]) -> int:
        """Replace the mirror of the organisation's assets with Apple's latest answer."""
        now = utcnow()
        rows = [
            {
                "adam_id": str(a["adamId"]),
                "pricing_param": str(a.get("pricingParam") or "STDQ"),
                "product_type": a.get("productType"),
                "total_count": int(a.get("totalCount") or 0),
                "assigned_count": int(a.get("assignedCount") or 0),
                "available_count": int(a.get("availableCount") or 0),
                "retired_count": int(a.get("retiredCount") or 0),
                "device_assignable": bool(a.get("deviceAssignable")),
                "revocable": bool(a.get("revocable")),
                "platforms": json.dumps(list(a.get("supportedPlatforms") or [])),
                "synced_at": now,
            }
            for a in found
        ]
        with self.engine.begin() as conn:
            conn.execute(delete(vpp_assets))
            if rows:
                conn.execute(insert(vpp_assets), rows)
        return len(rows)

    def assets(self, adam_id: str | None = None) -> list[dict[str, Any]]:
        query = select(vpp_assets).order_by(vpp_assets.c.adam_id)
        if adam_id is not None:
            query = query.where(vpp_assets.c.adam_id == adam_id)
        with self.engine.connect() as conn:
            return [
                {
                    **row._asdict(),
                    "platforms": json.loads(row.platforms),
                    "synced_at": row.synced_at,
                }
                for row in conn.execute(query)
            ]

    def start_event(
        self,
        event_id: str,
        event_type: str,
        adam_id: str,
        pricing_param: str,
        serials: Sequence[str],
    ) -> None:
        """Record an event Apple accepted and mark its licenses as in flight, in one go."""
        now = utcnow()
        status = "assigning" if event_type == "ASSOCIATE" else "revoking"
        with self.engine.begin() as conn:
            conn.execute(
                insert(vpp_events).values(
                    event_id=event_id, event_type=event_type, adam_id=adam_id,
                    status="PENDING", num_requested=len(serials), created_at=now,
                )
            )  # fmt: skip
            _upsert_licenses(
                conn, adam_id, serials,
                {"pricing_param": pricing_param, "status": status, "event_id": event_id,
                 "error": None, "updated_at": now},
            )  # fmt: skip

    def finish_event(
        self,
        event_id: str,
        status: str,
        num_completed: int | None,
        failures: Sequence[Mapping[str, Any]],
    ) -> None:
        """Apple's final word: licenses in flight become assigned (or are gone, for a
        revocation); each serial Apple names in ``failures`` keeps the error instead."""
        now = utcnow()
        failed = {str(f.get("serialNumber")): f for f in failures}
        with self.engine.begin() as conn:
            event = conn.execute(
                select(vpp_events).where(vpp_events.c.event_id == event_id)
            ).first()
            if event is None:
                return
            conn.execute(
                update(vpp_events)
                .where(vpp_events.c.event_id == event_id)
                .values(
                    status=status, num_completed=num_completed,
                    failures=json.dumps(list(failures)) if failures else None, completed_at=now,
                )
            )  # fmt: skip
            in_flight = (
                conn.execute(
                    select(vpp_licenses.c.serial_number).where(
                        vpp_licenses.c.event_id == event_id,
                        vpp_licenses.c.serial_number.in_(failed),
                    )
                )
                .scalars()
                .all()
            )
            # The serials that succeeded, in one statement (an event holds up to 1,000).
            done = (vpp_licenses.c.adam_id == event.adam_id) & (vpp_licenses.c.event_id == event_id)
            if failed:
                done = done & vpp_licenses.c.serial_number.not_in(failed)
            if event.event_type == "ASSOCIATE":
                conn.execute(
                    update(vpp_licenses).where(done).values(status="assigned", updated_at=now)
                )
            else:
                conn.execute(delete(vpp_licenses).where(done))
            for serial in in_flight:
                key = (vpp_licenses.c.adam_id == event.adam_id) & (
                    vpp_licenses.c.serial_number == serial
                )
                if serial in failed:
                    number = failed[serial].get("errorNumber")
                    error = f"{number}: {failed[serial].get('errorMessage')}"
                    if event.event_type == "DISASSOCIATE" and number == NOT_ASSOCIATED:
                        conn.execute(delete(vpp_licenses).where(key))  # there was none
                        continue
                    # A failed assignment has no license; a failed revocation keeps it.
                    status = "failed" if event.event_type == "ASSOCIATE" else "assigned"
                    conn.execute(
                        update(vpp_licenses)
                        .where(key)
                        .values(status=status, error=error, updated_at=now)
                    )

    def event(self, event_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(vpp_events).where(vpp_events.c.event_id == event_id)).first()
        if row is None:
            return None
        found = row._asdict()
        found["failures"] = json.loads(row.failures) if row.failures else []
        found["created_at"], found["completed_at"] = row.created_at, row.completed_at
        return found

    def pending_events(self) -> list[str]:
        query = select(vpp_events.c.event_id).where(vpp_events.c.status == "PENDING")
        with self.engine.connect() as conn:
            return list(conn.execute(query.order_by(vpp_events.c.created_at)).scalars())

    def licenses(self, adam_id: str) -> list[LicenseRow]:
        query = (
            select(vpp_licenses)
            .where(vpp_licenses.c.adam_id == adam_id)
            .order_by(vpp_licenses.c.serial_number)
        )
        with self.engine.connect() as conn:
            return [
                LicenseRow(**{**r._asdict(), "updated_at": r.updated_at})
                for r in conn.execute(query)
            ]

    def license_counts(self, adam_id: str) -> dict[str, int]:
        """status -> how many serials, for pages that show counts (not 100,000 rows)."""
        query = (
            select(vpp_licenses.c.status, func.count())
            .where(vpp_licenses.c.adam_id == adam_id)
            .group_by(vpp_licenses.c.status)
        )
        with self.engine.connect() as conn:
            return {status: n for status, n in conn.execute(query).all()}

    def state_counts(self, app_id: str) -> dict[str, int]:
        """status -> how many devices have this app in that state."""
        query = (
            select(app_device_states.c.status, func.count())
            .where(app_device_states.c.app_id == app_id)
            .group_by(app_device_states.c.status)
        )
        with self.engine.connect() as conn:
            return {status: n for status, n in conn.execute(query).all()}

    # Rollout to many devices at once ---------------------------------------------------------

    def rollout_targets(
        self, app_id: str, adam_id: str | None
    ) -> list[tuple[str, str | None, str | None, str | None, bool]]:
        """(device id, product name, model, OS version, DDM on) of each device the app should now
        be installed on: its
        device channel is active, it is assigned the app (all, or one of its tags), it holds a
        license when the app needs one, and it has no state for the app yet (or only
        ``needs_license``). One query for the whole fleet."""
        query = (
            select(
                devices.c.id,
                devices.c.product_name,
                devices.c.model,
                devices.c.os_version,
                ddm_channels.c.enabled_at,
            )
            .join(enrollments, enrollments.c.id == devices.c.id)
            .outerjoin(ddm_channels, ddm_channels.c.enrollment_id == devices.c.id)
            .where(enrollments.c.status == "active")
            .where(
                ~select(app_device_states.c.device_id)
                .where(
                    app_device_states.c.device_id == devices.c.id,
                    app_device_states.c.app_id == app_id,
                    app_device_states.c.status != "needs_license",
                )
                .exists()
            )
        )
        if adam_id is not None:
            query = query.join(
                vpp_licenses,
                (vpp_licenses.c.serial_number == devices.c.serial_number)
                & (vpp_licenses.c.adam_id == adam_id)
                & (vpp_licenses.c.status == "assigned"),
            )
        # Only the required assignments' targets: an app merely available to a tag is not
        # installed on its devices.
        targets = [t for t, b in self.assignments(app_id).items() if b == "required"]
        if not targets:
            return []
        if ALL not in targets:
            tags = [t.removeprefix("tag:") for t in targets]
            query = query.where(
                select(device_tags.c.device_id)
                .where(device_tags.c.device_id == devices.c.id, device_tags.c.tag.in_(tags))
                .exists()
            )
        with self.engine.connect() as conn:
            return [
                (r.id, r.product_name, r.model, r.os_version, r.enabled_at is not None)
                for r in conn.execute(query)
            ]

    def start_installs(self, app_id: str, device_ids: Sequence[str], command_uuid: str) -> None:
        """Every one of these devices is now ``pending`` with this install command (first
        attempt), in batched statements."""
        now = utcnow()
        with self.engine.begin() as conn:
            for start in range(0, len(device_ids), 5000):
                chunk = list(device_ids[start : start + 5000])
                conn.execute(  # only needs_license rows can be there (rollout_targets)
                    delete(app_device_states).where(
                        app_device_states.c.app_id == app_id,
                        app_device_states.c.device_id.in_(chunk),
                    )
                )
                _insert_rows(
                    conn, app_device_states, "device_id", chunk,
                    {"app_id": app_id, "status": "pending", "command_uuid": command_uuid,
                     "error": None, "attempts": 1, "updated_at": now},
                )  # fmt: skip

    # Managed app configuration (the Settings command) ---------------------------------------

    def configuration_sent(
        self, device_id: str, app_id: str, command_uuid: str, digest: str
    ) -> None:
        """A Settings ApplicationConfiguration command is on its way: its digest is recorded
        now (so it is not sent twice), the previous failure cleared, the attempt counted."""
        key = (app_device_states.c.device_id == device_id) & (app_device_states.c.app_id == app_id)
        with self.engine.begin() as conn:
            conn.execute(
                update(app_device_states)
                .where(key)
                .values(
                    configuration_sha256=digest,
                    configuration_command_uuid=command_uuid,
                    configuration_error=None,
                    configuration_attempts=app_device_states.c.configuration_attempts + 1,
                    configuration_updated_at=utcnow(),
                )
            )

    def configuration_for_command(self, device_id: str, command_uuid: str) -> str | None:
        """The app id a Settings command was sent for."""
        query = select(app_device_states.c.app_id).where(
            app_device_states.c.device_id == device_id,
            app_device_states.c.configuration_command_uuid == command_uuid,
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def configuration_answered(self, device_id: str, app_id: str, error: str | None) -> None:
        """The device's answer to the Settings command: applied (``error`` None: the digest
        stays, the attempts start again), or refused (the digest is cleared so the next
        reconcile sends it again after the backoff, and the ErrorChain is kept)."""
        key = (app_device_states.c.device_id == device_id) & (app_device_states.c.app_id == app_id)
        values: dict[str, Any] = {"configuration_updated_at": utcnow()}
        if error is None:
            values.update(configuration_error=None, configuration_attempts=0)
        else:
            values.update(configuration_error=error, configuration_sha256=None)
        with self.engine.begin() as conn:
            conn.execute(update(app_device_states).where(key).values(**values))

    # The scheduled reconcile -----------------------------------------------------------------

    def record_list(self, device_id: str) -> None:
        """The device just answered a ManagedApplicationList."""
        now = utcnow()
        key = app_device_lists.c.device_id == device_id
        with self.engine.begin() as conn:
            if conn.execute(update(app_device_lists).where(key).values(listed_at=now)).rowcount:
                return
            conn.execute(insert(app_device_lists).values(device_id=device_id, listed_at=now))

    def listed_at(self, device_id: str) -> datetime | None:
        key = app_device_lists.c.device_id == device_id
        query = select(app_device_lists.c.listed_at).where(key)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def lists_due(self, listed_before: datetime, limit: int = 1000) -> list[str]:
        """Active devices assigned any app whose last ManagedApplicationList is older than the
        cut-off (or that never answered one), with none queued or unanswered; oldest first."""
        query = (
            select(devices.c.id)
            .join(enrollments, enrollments.c.id == devices.c.id)
            .outerjoin(app_device_lists, app_device_lists.c.device_id == devices.c.id)
            .where(
                enrollments.c.status == "active",
                or_(
                    app_device_lists.c.listed_at.is_(None),
                    app_device_lists.c.listed_at < listed_before,
                ),
                _has_assignment(devices.c.id),
                ~_list_pending(devices.c.id),
            )
            .order_by(app_device_lists.c.listed_at.nulls_first(), devices.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def retries_due(self, cutoffs: Sequence[tuple[int, datetime]], limit: int = 1000) -> list[str]:
        """Active devices with a failed install (or a refused configuration) of an app still
        required of them whose backoff has passed, with no ManagedApplicationList queued or
        unanswered. ``cutoffs``: (attempts, last try no later than) per backoff step, the
        last one for that many attempts and more (mdmserver.apps.reconcile.retry_cutoffs).
        Installs Apple's schema refused are left out: only a changed app or assignment (or
        the device's next list) brings those on."""
        s = app_device_states
        install = and_(
            s.c.channel == "command",
            s.c.status == "failed",
            or_(s.c.error.is_(None), ~s.c.error.contains("refused_by_schema")),
            _backoff_passed(s.c.attempts, s.c.updated_at, cutoffs),
        )
        configuration = and_(
            s.c.status == "installed",
            s.c.configuration_error.is_not(None),
            _backoff_passed(s.c.configuration_attempts, s.c.configuration_updated_at, cutoffs),
        )
        tags = select(literal("tag:") + device_tags.c.tag).where(
            device_tags.c.device_id == s.c.device_id
        )
        still_required = (
            select(app_assignments.c.app_id)
            .where(
                app_assignments.c.app_id == s.c.app_id,
                app_assignments.c.behaviour == "required",
                or_(app_assignments.c.target == ALL, app_assignments.c.target.in_(tags)),
            )
            .exists()
        )
        query = (
            select(s.c.device_id)
            .join(enrollments, enrollments.c.id == s.c.device_id)
            .where(
                enrollments.c.status == "active",
                or_(install, configuration),
                still_required,
                ~_list_pending(s.c.device_id),
            )
            .group_by(s.c.device_id)
            .order_by(s.c.device_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())


class AppFiles:
    """Uploaded app files, one folder per app under ``<MDM_HOME>/apps`` (mode 0700)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, app_id: str, file_name: str) -> Path:
        return self.root / app_id / file_name

    def write(self, app_id: str, file_name: str, data: bytes) -> Path:
        folder = self.root / app_id
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = folder / file_name
        temporary = folder / f".{file_name}.{os.getpid()}.tmp"
        temporary.write_bytes(data)
        os.replace(temporary, target)
        return target

    def remove(self, app_id: str) -> None:
        folder = self.root / app_id
        if folder.is_dir():
            for child in folder.iterdir():
                child.unlink(missing_ok=True)
            folder.rmdir()


def new_app_id() -> str:
    return secrets.token_hex(8)


def _device_tag_targets(conn: Connection, device_id: str) -> list[str]:
    query = select(device_tags.c.tag).where(device_tags.c.device_id == device_id)
    return [f"tag:{t}" for t in conn.execute(query).scalars()]


def _is_assigned(conn: Connection, app_id: str, device_id: str) -> bool:
    targets = [ALL, *_device_tag_targets(conn, device_id)]
    query = select(app_assignments.c.target).where(
        app_assignments.c.app_id == app_id, app_assignments.c.target.in_(targets)
    )
    return conn.execute(query.limit(1)).first() is not None


def _upsert_licenses(
    conn: Connection, adam_id: str, serials: Sequence[str], values: Mapping[str, Any]
) -> None:
    """Set ``values`` on the licenses of these serials, creating the missing rows: three
    statements per batch whatever its size, not two per serial."""
    key = (vpp_licenses.c.adam_id == adam_id) & vpp_licenses.c.serial_number.in_(serials)
    conn.execute(update(vpp_licenses).where(key).values(**values))
    known = set(conn.execute(select(vpp_licenses.c.serial_number).where(key)).scalars())
    missing = [serial for serial in dict.fromkeys(serials) if serial not in known]
    _insert_rows(conn, vpp_licenses, "serial_number", missing, {"adam_id": adam_id, **values})


def _insert_rows(
    conn: Connection, table: Table, column: str, keys: Sequence[str], values: Mapping[str, Any]
) -> None:
    """One row per key (in ``column``), the other columns the same ``values``: on PostgreSQL
    a single ``INSERT ... SELECT FROM unnest(...)`` (its driver's executemany costs a round
    trip per row), elsewhere executemany (SQLite is in-process)."""
    if not keys:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), [{column: key, **values} for key in keys])
        return
    names = [column, *values]
    params = ", ".join(f":{name}" for name in values)
    statement = text(
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT k, {params}"
        " FROM unnest(CAST(:keys AS text[])) AS t(k)"
    ).bindparams(*(bindparam(name, type_=table.c[name].type) for name in values))
    conn.execute(statement, {"keys": list(keys), **values})


def _list_pending(device_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """A ManagedApplicationList is queued for the device channel, or sent and unanswered."""
    return (
        select(command_queue.c.id)
        .join(commands, commands.c.uuid == command_queue.c.command_uuid)
        .where(
            command_queue.c.enrollment_id == device_id,
            command_queue.c.status.in_(_UNANSWERED),
            commands.c.request_type == LIST,
        )
        .exists()
    )


def _has_assignment(device_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """Some app is assigned to every device, or to one of this device's tags."""
    to_all = select(app_assignments.c.app_id).where(app_assignments.c.target == ALL).exists()
    by_tag = (
        select(device_tags.c.device_id)
        .join(app_assignments, app_assignments.c.target == literal("tag:") + device_tags.c.tag)
        .where(device_tags.c.device_id == device_id)
        .exists()
    )
    return or_(to_all, by_tag)


def _backoff_passed(
    attempts: ColumnElement[Any],
    tried_at: ColumnElement[Any],
    cutoffs: Sequence[tuple[int, datetime]],
) -> ColumnElement[bool]:
    """The backoff of reconcile.retry_at as SQL: one term per step (the first also covers
    fewer attempts, the last more), so no dialect's date arithmetic is needed."""
    terms = []
    for index, (count, cutoff) in enumerate(cutoffs):
        if len(cutoffs) == 1:
            matches: ColumnElement[bool] = true()
        elif index == 0:
            matches = attempts <= count
        elif index == len(cutoffs) - 1:
            matches = attempts >= count
        else:
            matches = attempts == count
        terms.append(and_(matches, tried_at.is_not(None), tried_at <= cutoff))
    return or_(*terms)


def _configuration_row(row: Row[Any]) -> dict[str, Any] | None:
    """How the managed app configuration's Settings command fared: ``sent`` (no answer yet),
    ``applied`` or ``failed`` (with the device's ErrorChain); None when none was sent."""
    if row.configuration_command_uuid is None:
        return None
    error = json.loads(row.configuration_error) if row.configuration_error else None
    status = "failed" if error else "sent" if row.configuration_attempts else "applied"
    return {
        "status": status,
        "command_uuid": row.configuration_command_uuid,
        "error": error,
        "attempts": row.configuration_attempts,
        "updated_at": row.configuration_updated_at,
    }


def _state_row(row: Row[Any]) -> dict[str, Any]:
    return {
        "device_id": row.device_id,
        "app_id": row.app_id,
        "status": row.status,
        "command_uuid": row.command_uuid,
        "error": json.loads(row.error) if row.error else None,
        "attempts": row.attempts,
        "channel": row.channel,
        "installed_version": row.installed_version,
        "configuration_sha256": row.configuration_sha256,
        "configuration": _configuration_row(row),
        "updated_at": row.updated_at,
    }


def _assignment(row: Row[Any]) -> Assignment:
    return _assignment_values(row._asdict())


def _assignment_values(values: Mapping[str, Any]) -> Assignment:
    raw = values.get("configuration")
    return Assignment(
        target=values["target"],
        behaviour=values["behaviour"],
        management_flags=values.get("management_flags"),
        configuration=json.loads(raw) if raw else None,
    )


def _rank(assignment: Assignment) -> tuple[int, int, str]:
    """Smaller decides: required first, then a tag's assignment, then by target name."""
    return (
        0 if assignment.behaviour == "required" else 1,
        0 if assignment.target != ALL else 1,
        assignment.target,
    )


def _app(row: Row[Any]) -> AppRow:
    return _app_values(row._asdict())


def _app_values(values: dict[str, Any]) -> AppRow:
    values = dict(values)
    values["manifest"] = json.loads(values["manifest"]) if values["manifest"] else None
    values["created_at"] = values["created_at"]
    values["updated_at"] = values["updated_at"]
    return AppRow(**values)
