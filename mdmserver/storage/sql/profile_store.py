"""Managed profiles in SQL: the profiles, who they are assigned to, and what each device has.

Kept beside :mod:`mdmserver.storage.sql` on the same engine. It reads the core tables
(devices, enrollments, device_tags, command_queue) but writes only its own.
"""

from __future__ import annotations

import builtins
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from mdmserver.storage.sql.schema import (
    command_queue,
    device_identity_certs,
    device_tags,
    devices,
    enrollments,
    fde_escrow,
    profile_assignments,
    profile_shown,
    profile_signatures,
    profile_states,
    profiles,
)
from mdmserver.storage.sql.types import utcnow

ALL = "all"
_PENDING_QUEUE = ("queued", "sent", "notnow")
_DEVICE_COLUMNS = (
    "serial_number", "device_name", "model", "model_name", "product_name", "os_version",
    "imei", "meid",
)  # fmt: skip


class NameTaken(ValueError):
    """Another live profile already has this name or PayloadIdentifier."""


@dataclass(frozen=True, slots=True)
class ProfileRow:
    id: str
    name: str
    identifier: str
    payload_uuid: str
    digest: str
    content: bytes
    source: str
    payload_types: tuple[str, ...]
    encrypt: bool
    per_device: bool
    revision: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    # What admins are shown: the content with secret variables redacted, when it has any.
    shown: bytes = b""
    has_secrets: bool = False


@dataclass(frozen=True, slots=True)
class StateRow:
    enrollment_id: str
    identifier: str
    profile_id: str | None
    installed_uuid: str | None
    action: str | None
    sent_uuid: str | None
    command_uuid: str | None
    status: str
    error: str | None
    updated_at: datetime
    queued: bool  # the last command is still waiting in the device's queue


@dataclass(frozen=True, slots=True)
class NewProfile:
    name: str
    identifier: str
    payload_uuid: str
    digest: str
    content: bytes
    source: str
    payload_types: Sequence[str]
    encrypt: bool
    per_device: bool
    # Set when the content holds secret template variables: the redacted copy admins see.
    # The content itself is then sealed at rest.
    shown_content: bytes | None = None


class Sealer(Protocol):
    """Seals secrets at rest (mdmserver.instance_files.SecretsKey)."""

    def seal(self, plaintext: bytes, purpose: bytes) -> bytes: ...
    def unseal(self, blob: bytes, purpose: bytes) -> bytes: ...


class SecretsUnavailable(RuntimeError):
    """Sealed profile content, and no secrets key to open or make it with."""


_CONTENT = b"profiles.content"


def target_for_tag(tag: str | None) -> str:
    return ALL if tag is None else f"tag:{tag}"


class ProfileStore:
    def __init__(self, engine: Engine, sealer: Sealer | None = None) -> None:
        self.engine = engine
        self.sealer = sealer

    # Profiles -------------------------------------------------------------------------------

    def create(self, new: NewProfile) -> ProfileRow:
        now = utcnow()
        row = {
            "id": secrets.token_hex(8),
            **self._fields(new),
            "revision": 1,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(profiles).values(**row))
                self._save_shown(conn, row["id"], new.shown_content)
        except IntegrityError:
            raise NameTaken(f"a profile named {new.name!r} or {new.identifier!r} exists") from None
        found = self.get(row["id"])
        assert found is not None
        return found

    def replace(self, profile_id: str, new: NewProfile) -> ProfileRow | None:
        """A new revision of a live profile (same id); the revision counts up on change."""
        current = self.get(profile_id)
        if current is None or current.deleted_at is not None:
            return None
        changed = current.digest != new.digest
        values = {**self._fields(new), "updated_at": utcnow()}
        if changed:
            values["revision"] = current.revision + 1
        try:
            with self.engine.begin() as conn:
                conn.execute(update(profiles).where(profiles.c.id == profile_id).values(**values))
                self._save_shown(conn, profile_id, new.shown_content)
        except IntegrityError:
            raise NameTaken(f"a profile named {new.name!r} or {new.identifier!r} exists") from None
        return self.get(profile_id)

    def get(self, key: str) -> ProfileRow | None:
        """By id, or by name among live profiles."""
        with self.engine.connect() as conn:
            row = conn.execute(_profile_query().where(profiles.c.id == key)).first()
            if row is None:
                row = conn.execute(
                    _profile_query().where(profiles.c.name == key, profiles.c.deleted_at.is_(None))
                ).first()
        return self._profile(row) if row else None

    def list(self, *, include_deleted: bool = False) -> list[ProfileRow]:
        query = _profile_query().order_by(profiles.c.name, profiles.c.created_at)
        if not include_deleted:
            query = query.where(profiles.c.deleted_at.is_(None))
        with self.engine.connect() as conn:
            return [self._profile(r) for r in conn.execute(query)]

    def delete(self, profile_id: str) -> bool:
        """Tombstone the profile and drop its assignments: devices will be told to remove it."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(profile_assignments).where(profile_assignments.c.profile_id == profile_id)
            )
            done = conn.execute(
                update(profiles)
                .where(profiles.c.id == profile_id, profiles.c.deleted_at.is_(None))
                .values(deleted_at=utcnow())
            )
        return done.rowcount > 0

    def managed_identifiers(self) -> set[str]:
        """Every identifier this server ever managed, deleted ones included."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(profiles.c.identifier).distinct()).scalars())

    # Assignments ----------------------------------------------------------------------------

    def assign(self, profile_id: str, target: str) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(profile_assignments).values(
                        profile_id=profile_id, target=target, created_at=utcnow()
                    )
                )
        except IntegrityError:
            return False  # already assigned
        return True

    def unassign(self, profile_id: str, target: str) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                delete(profile_assignments).where(
                    profile_assignments.c.profile_id == profile_id,
                    profile_assignments.c.target == target,
                )
            )
        return done.rowcount > 0

    def assignments(self, profile_id: str) -> builtins.list[str]:
        with self.engine.connect() as conn:
            return sorted(
                conn.execute(
                    select(profile_assignments.c.target).where(
                        profile_assignments.c.profile_id == profile_id
                    )
                ).scalars()
            )

    def desired_for(self, device_id: str) -> builtins.list[ProfileRow]:
        """Live profiles assigned to every device or to one of this device's tags."""
        tags = select(device_tags.c.tag).where(device_tags.c.device_id == device_id)
        with self.engine.connect() as conn:
            targets = [ALL] + [f"tag:{t}" for t in conn.execute(tags).scalars()]
            rows = conn.execute(
                _profile_query()
                .where(
                    profiles.c.deleted_at.is_(None),
                    profiles.c.id.in_(
                        select(profile_assignments.c.profile_id).where(
                            profile_assignments.c.target.in_(targets)
                        )
                    ),
                )
                .order_by(profiles.c.name)
            )
            return [self._profile(r) for r in rows]

    def device_enrollments(self) -> builtins.list[str]:
        """Active device-channel enrollments: profiles go to device channels only.

        Used after an admin change to find whom to reconcile."""
        query = select(enrollments.c.id).where(
            enrollments.c.status == "active", enrollments.c.id == enrollments.c.device_id
        )
        with self.engine.connect() as conn:
            return sorted(conn.execute(query).scalars())

    # Per-enrollment state -------------------------------------------------------------------

    def states(self, enrollment_id: str) -> dict[str, StateRow]:
        query = _state_query().where(profile_states.c.enrollment_id == enrollment_id)
        with self.engine.connect() as conn:
            return {r.identifier: _state(r) for r in conn.execute(query)}

    def state_for_command(self, enrollment_id: str, command_uuid: str) -> StateRow | None:
        query = _state_query().where(
            profile_states.c.enrollment_id == enrollment_id,
            profile_states.c.command_uuid == command_uuid,
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _state(row) if row else None

    def record_sent(
        self,
        enrollment_id: str,
        identifier: str,
        *,
        profile_id: str | None,
        action: str,
        command_uuid: str | None,
        sent_uuid: str | None = None,
        status: str = "pending",
        error: str | None = None,
    ) -> None:
        values = {
            "profile_id": profile_id,
            "action": action,
            "sent_uuid": sent_uuid,
            "command_uuid": command_uuid,
            "status": status,
            "error": error,
            "updated_at": utcnow(),
        }
        self._upsert(enrollment_id, identifier, values)

    def record_answer(
        self, enrollment_id: str, command_uuid: str, *, ok: bool, error: str | None
    ) -> StateRow | None:
        """An InstallProfile / RemoveProfile answer: installed/removed, or failed with why."""
        state = self.state_for_command(enrollment_id, command_uuid)
        if state is None:
            return None
        values: dict[str, Any] = {"updated_at": utcnow(), "error": None if ok else error}
        if not ok:
            values["status"] = "failed"
        elif state.action == "install":
            values.update(status="installed", installed_uuid=state.sent_uuid)
        else:
            values.update(status="removed", installed_uuid=None)
        with self.engine.begin() as conn:
            conn.execute(update(profile_states).where(_key(state)).values(**values))
        return state

    def record_profile_list(self, enrollment_id: str, reported: Mapping[str, str]) -> None:
        """What the device says it has: the truth for every identifier we manage."""
        managed = self.managed_identifiers()
        known = self.states(enrollment_id)
        now = utcnow()
        for identifier in managed | set(known):
            installed = reported.get(identifier)
            state = known.get(identifier)
            if state is None and installed is None:
                continue
            values: dict[str, Any] = {"installed_uuid": installed, "updated_at": now}
            if state is None:
                values["status"] = "installed"
            elif state.status in ("installed", "removed"):
                values["status"] = "installed" if installed else "removed"
            self._upsert(enrollment_id, identifier, values)

    def forget_installed(self, enrollment_id: str) -> None:
        """A fresh enrollment starts from nothing installed (unenrolling removed them all)."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(profile_states).where(profile_states.c.enrollment_id == enrollment_id)
            )

    def _upsert(self, enrollment_id: str, identifier: str, values: Mapping[str, Any]) -> None:
        where = and_(
            profile_states.c.enrollment_id == enrollment_id,
            profile_states.c.identifier == identifier,
        )
        with self.engine.begin() as conn:
            if conn.execute(update(profile_states).where(where).values(**values)).rowcount:
                return
            row = {"status": "pending", **values}
            conn.execute(
                insert(profile_states).values(
                    enrollment_id=enrollment_id, identifier=identifier, **row
                )
            )

    # Signatures, device certificates, device values, escrow ----------------------------------

    def signature(self, digest: str) -> bytes | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(profile_signatures.c.signed).where(profile_signatures.c.digest == digest)
            ).scalar()

    def save_signatures(self, signed: Mapping[str, bytes]) -> None:
        """Cache signatures; one already cached (another worker won the race) is kept."""
        now = utcnow()
        for digest, der in signed.items():
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        insert(profile_signatures).values(digest=digest, signed=der, created_at=now)
                    )
            except IntegrityError:
                continue

    def remember_certificate(self, device_id: str, fingerprint: str, der: bytes) -> None:
        with self.engine.begin() as conn:
            seen = conn.execute(
                update(device_identity_certs)
                .where(device_identity_certs.c.fingerprint == fingerprint)
                .values(seen_at=utcnow(), device_id=device_id)
            )
            if not seen.rowcount:
                conn.execute(
                    insert(device_identity_certs).values(
                        fingerprint=fingerprint, device_id=device_id, der=der, seen_at=utcnow()
                    )
                )

    def certificate(self, device_id: str) -> bytes | None:
        """The most recently seen identity certificate of the device."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(device_identity_certs.c.der)
                .where(device_identity_certs.c.device_id == device_id)
                .order_by(device_identity_certs.c.seen_at.desc())
                .limit(1)
            ).scalar()

    def device_values(self, device_id: str) -> dict[str, str | None]:
        cols = [devices.c[name] for name in _DEVICE_COLUMNS]
        with self.engine.connect() as conn:
            row = conn.execute(select(*cols).where(devices.c.id == device_id)).first()
        values: dict[str, str | None] = dict(row._mapping) if row else {}
        values["udid"] = device_id
        return values

    def save_escrow(self, device_id: str, device_key: str | None, envelope: bytes) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(fde_escrow).values(
                    device_id=device_id,
                    device_key=device_key,
                    envelope=envelope,
                    received_at=utcnow(),
                )
            )

    def escrowed(self, device: str) -> builtins.list[tuple[str, str | None, bytes, datetime]]:
        """Escrowed recovery keys of a device (by id or reported device key), newest first."""
        where = or_(fde_escrow.c.device_id == device, fde_escrow.c.device_key == device)
        query = select(fde_escrow).where(where).order_by(fde_escrow.c.id.desc())
        with self.engine.connect() as conn:
            return [
                (r.device_id, r.device_key, r.envelope, r.received_at) for r in conn.execute(query)
            ]

    def status_rows(
        self, enrollment_ids: Iterable[str] | None = None, identifier: str | None = None
    ) -> builtins.list[StateRow]:
        """Per-device status, for the API and CLI."""
        query = _state_query().order_by(profile_states.c.enrollment_id, profile_states.c.identifier)
        if enrollment_ids is not None:
            query = query.where(profile_states.c.enrollment_id.in_(list(enrollment_ids)))
        if identifier is not None:
            query = query.where(profile_states.c.identifier == identifier)
        with self.engine.connect() as conn:
            return [_state(r) for r in conn.execute(query)]

    # Sealing --------------------------------------------------------------------------------

    def _fields(self, new: NewProfile) -> dict[str, Any]:
        content = new.content
        if new.shown_content is not None:
            if self.sealer is None:
                raise SecretsUnavailable("profiles with secret variables need the secrets key")
            content = self.sealer.seal(content, _CONTENT)
        return {
            "name": new.name,
            "identifier": new.identifier,
            "payload_uuid": new.payload_uuid,
            "digest": new.digest,
            "content": content,
            "source": new.source,
            "payload_types": ",".join(new.payload_types),
            "encrypt": new.encrypt,
            "per_device": new.per_device,
        }

    @staticmethod
    def _save_shown(conn: Connection, profile_id: str, shown: bytes | None) -> None:
        conn.execute(delete(profile_shown).where(profile_shown.c.profile_id == profile_id))
        if shown is not None:
            conn.execute(insert(profile_shown).values(profile_id=profile_id, content=shown))

    def _profile(self, row: Row[Any]) -> ProfileRow:
        content = bytes(row.content)
        shown = bytes(row.content_shown) if row.content_shown is not None else None
        if shown is not None:
            if self.sealer is None:
                raise SecretsUnavailable(
                    f"profile {row.name!r} is sealed and this process has no secrets key"
                )
            content = self.sealer.unseal(content, _CONTENT)
        return ProfileRow(
            id=row.id,
            name=row.name,
            identifier=row.identifier,
            payload_uuid=row.payload_uuid,
            digest=row.digest,
            content=content,
            source=row.source,
            payload_types=tuple(t for t in row.payload_types.split(",") if t),
            encrypt=row.encrypt,
            per_device=row.per_device,
            revision=row.revision,
            created_at=row.created_at or utcnow(),
            updated_at=row.updated_at or utcnow(),
            deleted_at=row.deleted_at,
            shown=content if shown is None else shown,
            has_secrets=shown is not None,
        )


def _profile_query() -> Any:
    """profiles with the redacted copy of those that hold secrets."""
    return select(profiles, profile_shown.c.content.label("content_shown")).select_from(
        profiles.outerjoin(profile_shown, profile_shown.c.profile_id == profiles.c.id)
    )


def _state_query() -> Any:
    """profile_states with the queue status of each row's last command."""
    queue_status = (
        select(command_queue.c.status)
        .where(
            command_queue.c.enrollment_id == profile_states.c.enrollment_id,
            command_queue.c.command_uuid == profile_states.c.command_uuid,
        )
        .scalar_subquery()
    )
    return select(profile_states, queue_status.label("queue_status"))


def _key(state: StateRow) -> Any:
    return and_(
        profile_states.c.enrollment_id == state.enrollment_id,
        profile_states.c.identifier == state.identifier,
    )


def _state(row: Row[Any]) -> StateRow:
    return StateRow(
        enrollment_id=row.enrollment_id,
        identifier=row.identifier,
        profile_id=row.profile_id,
        installed_uuid=row.installed_uuid,
        action=row.action,
        sent_uuid=row.sent_uuid,
        command_uuid=row.command_uuid,
        status=row.status,
        error=row.error,
        updated_at=row.updated_at or utcnow(),
        queued=row.queue_status in _PENDING_QUEUE,
    )
