"""An in-memory implementation of the device ports (check-in, queue, certificate binding, last
seen), for the service layer's unit tests: no engine, no files, no Flask.

It keeps the SQL implementation's rules, not just its shape: the queue hands out by priority
then age, a NotNow'd command waits for the next session, a duplicate result is told apart from
one for a command never sent, expired commands are not delivered, and a new enrollment or a
CheckOut cancels what was queued except the security commands. The contract test
(``tests/storage/test_ports_contract.py``) runs the same assertions against this class and
against :class:`~mdmserver.storage.sql.device_store.SQLStorage` on SQLite and PostgreSQL, so the two
cannot drift apart.

It also answers what the re-enrollment rule reads (``current_binding``, ``use_allowance``,
``allow_reenroll``; in SQL those are the enrollment store's, on the same tables). What it leaves
out belongs to other ports: Authenticate here does not forget the device's inventory facts or
compliance state (the SQL store does both in its transaction), and it knows no issued
certificates, so a bound identity is never "revoked" here. One lock serialises every call, as a
database transaction would.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from mdmserver.protocol.commands import SECURITY_COMMANDS, Command
from mdmserver.protocol.enrollment_id import EnrollmentIdentity
from mdmserver.storage.records import (
    ANSWERED,
    PENDING,
    Access,
    CurrentBinding,
    DeviceRecord,
    EnrollmentInfo,
    EnrollmentStatus,
    NextCommand,
    QueueItem,
    QueueStatus,
    Recorded,
    ResultOutcome,
    Seen,
    TokenRecord,
    UnknownEnrollment,
)
from mdmserver.storage.sql.types import utcnow


@dataclass(slots=True)
class _Device:
    record: DeviceRecord
    enrolled: bool = False
    bootstrap_token: bytes | None = None
    authenticated_at: datetime | None = None
    checked_out_at: datetime | None = None
    last_seen_at: datetime | None = None
    reenroll_allowed_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Binding:
    device_id: str
    not_after: datetime | None
    bound_at: datetime


@dataclass(slots=True)
class _Enrollment:
    id: str
    device_id: str
    type: str
    status: EnrollmentStatus
    topic: str | None
    user_id: str | None = None
    push_token_hex: str | None = None
    push_magic: str | None = None
    token_stale: bool = False
    awaiting_configuration: bool = False
    unlock_token: bytes | None = None
    user_short_name: str | None = None
    user_long_name: str | None = None
    token_updated_at: datetime | None = None
    last_seen_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Command:
    uuid: str
    request_type: str
    plist: bytes
    expires_at: datetime | None
    created_by: str | None


@dataclass(slots=True)
class _Row:
    id: int
    enrollment_id: str
    command: _Command
    priority: int
    created_at: datetime
    status: QueueStatus = QueueStatus.QUEUED
    sent_at: datetime | None = None
    answered_at: datetime | None = None
    notnow_count: int = 0
    result: bytes | None = None

    def live(self, now: datetime) -> bool:
        expires_at = self.command.expires_at
        return expires_at is None or expires_at > now


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the event log (Authenticate, TokenUpdate, CheckOut, ...)."""

    kind: str
    device_id: str
    enrollment_id: str
    detail: str


@dataclass
class MemoryStorage:
    """The device ports in a few dicts behind one lock (see the module docstring)."""

    devices: dict[str, _Device] = field(default_factory=dict)
    enrollments: dict[str, _Enrollment] = field(default_factory=dict)
    bindings: dict[str, _Binding] = field(default_factory=dict)  # by fingerprint
    commands: dict[str, _Command] = field(default_factory=dict)
    rows: list[_Row] = field(default_factory=list)  # in id (age) order
    events: list[Event] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def dispose(self, close: bool = True) -> None:
        """Nothing to release; kept so this class is a whole ``Storage``."""

    # Check-in -------------------------------------------------------------------------------

    def authenticate(self, device: DeviceRecord, identity: EnrollmentIdentity) -> None:
        now = utcnow()
        with self._lock:
            known = self.devices.get(device.device_id)
            self.devices[device.device_id] = _Device(
                record=device,
                bootstrap_token=known.bootstrap_token if known else None,
                authenticated_at=now,
                last_seen_at=known.last_seen_at if known else None,
                reenroll_allowed_until=known.reenroll_allowed_until if known else None,
            )
            channels = self._channels_of(device.device_id)
            self._cancel_pending({c.id for c in channels})
            for channel in channels:
                channel.status = EnrollmentStatus.PENDING
                channel.push_token_hex = channel.push_magic = None
                channel.unlock_token = None
                channel.token_stale = channel.awaiting_configuration = False
                channel.topic = device.topic
            if identity.id not in self.enrollments:
                self.enrollments[identity.id] = _Enrollment(
                    id=identity.id,
                    device_id=identity.device_id,
                    type=identity.type.value,
                    status=EnrollmentStatus.PENDING,
                    topic=device.topic,
                )
            self._event("Authenticate", identity, "")

    def token_update(self, token: TokenRecord) -> bool:
        identity = token.identity
        now = utcnow()
        with self._lock:
            parent = self._status(identity.device_id)
            if parent is None or parent == EnrollmentStatus.CHECKED_OUT:
                raise UnknownEnrollment(f"device {identity.device_id} has not authenticated")
            before = self._status(identity.id)
            channel = self.enrollments.get(identity.id)
            if identity.is_user_channel:
                if parent != EnrollmentStatus.ACTIVE:
                    raise UnknownEnrollment("user channel before the device channel's TokenUpdate")
                if channel is None:
                    channel = _Enrollment(
                        id=identity.id,
                        device_id=identity.device_id,
                        type=identity.type.value,
                        status=EnrollmentStatus.ACTIVE,
                        topic=token.topic,
                        user_id=identity.user_id,
                    )
                    self.enrollments[identity.id] = channel
            else:
                self.devices[identity.device_id].enrolled = True
            if channel is not None:
                channel.topic = token.topic
                channel.push_token_hex = token.push_token_hex
                channel.push_magic = token.push_magic
                channel.token_stale = False
                channel.status = EnrollmentStatus.ACTIVE
                channel.token_updated_at = now
                if token.unlock_token is not None:
                    channel.unlock_token = token.unlock_token
                if token.awaiting_configuration is not None:
                    channel.awaiting_configuration = token.awaiting_configuration
                if token.user_short_name is not None:
                    channel.user_short_name = token.user_short_name
                if token.user_long_name is not None:
                    channel.user_long_name = token.user_long_name
            self._event("TokenUpdate", identity, "")
        return before != EnrollmentStatus.ACTIVE

    def check_out(self, identity: EnrollmentIdentity) -> None:
        now = utcnow()
        with self._lock:
            status = self._status(identity.id)
            if status is None or status == EnrollmentStatus.CHECKED_OUT:
                raise UnknownEnrollment(f"enrollment {identity.id} is not enrolled")
            if identity.is_user_channel:
                channels = [self.enrollments[identity.id]]
            else:
                channels = self._channels_of(identity.device_id)
                device = self.devices[identity.device_id]
                device.enrolled = False
                device.checked_out_at = now
            self._cancel_pending({c.id for c in channels})
            for channel in channels:
                channel.status = EnrollmentStatus.CHECKED_OUT
            self._event("CheckOut", identity, "")

    def set_bootstrap_token(self, device_id: str, token: bytes | None) -> None:
        with self._lock:
            device = self.devices.get(device_id)
            if device is None:
                raise UnknownEnrollment(f"device {device_id} is not known")
            device.bootstrap_token = token

    def get_bootstrap_token(self, device_id: str) -> bytes | None:
        with self._lock:
            device = self.devices.get(device_id)
            if device is None:
                raise UnknownEnrollment(f"device {device_id} is not known")
            return device.bootstrap_token

    def enrollment(self, enrollment_id: str) -> EnrollmentInfo | None:
        with self._lock:
            e = self.enrollments.get(enrollment_id)
            if e is None:
                return None
            return EnrollmentInfo(
                id=e.id,
                device_id=e.device_id,
                type=e.type,
                status=e.status,
                topic=e.topic,
                push_token_hex=e.push_token_hex,
                push_magic=e.push_magic,
                token_stale=e.token_stale,
                awaiting_configuration=e.awaiting_configuration,
                unlock_token=e.unlock_token,
                user_id=e.user_id,
                user_short_name=e.user_short_name,
                last_seen_at=e.last_seen_at,
            )

    def enrollment_status(self, enrollment_id: str) -> EnrollmentStatus | None:
        with self._lock:
            return self._status(enrollment_id)

    def record_event(self, kind: str, identity: EnrollmentIdentity, detail: str = "") -> None:
        with self._lock:
            self._event(kind, identity, detail)

    # Certificate binding --------------------------------------------------------------------

    def device_for_certificate(self, fingerprint: str) -> str | None:
        with self._lock:
            binding = self.bindings.get(fingerprint)
            return binding.device_id if binding else None

    def is_bound(self, device_id: str, fingerprint: str) -> bool:
        with self._lock:
            return self._bound(device_id, fingerprint)

    def access(self, device_id: str, enrollment_id: str, fingerprint: str) -> Access:
        with self._lock:
            return Access(self._bound(device_id, fingerprint), self._status(enrollment_id))

    def bind_certificate(
        self, device_id: str, fingerprint: str, not_after: datetime | None, *, replace: bool
    ) -> None:
        with self._lock:
            if device_id not in self.devices:
                raise UnknownEnrollment(f"device {device_id} is not known")  # SQL: foreign key
            if replace:
                for other in [f for f, b in self.bindings.items() if b.device_id == device_id]:
                    if other != fingerprint:
                        del self.bindings[other]
            already = self.bindings.get(fingerprint)
            if already is None:
                self.bindings[fingerprint] = _Binding(device_id, not_after, utcnow())
            elif already.device_id != device_id:
                raise ValueError("certificate is bound to another device")

    # What the re-enrollment rule reads (service/reenroll.py's ReenrollStore) -----------------

    def current_binding(self, device_id: str) -> CurrentBinding | None:
        with self._lock:
            mine = [(f, b) for f, b in self.bindings.items() if b.device_id == device_id]
            if not mine:
                return None
            fingerprint, bound = max(mine, key=lambda fb: fb[1].bound_at)
            channel = self.enrollments.get(device_id)
            channels = {c.id for c in self._channels_of(device_id)}
            erased = any(
                r.enrollment_id in channels
                and r.command.request_type == "EraseDevice"
                and r.status == QueueStatus.ACKNOWLEDGED
                and r.answered_at is not None
                and r.answered_at >= bound.bound_at
                for r in self.rows
            )
            device = self.devices.get(device_id)
            return CurrentBinding(
                device_id=device_id,
                fingerprint=fingerprint,
                not_after=bound.not_after,
                bound_at=bound.bound_at,
                status=channel.status.value if channel else None,
                token_updated_at=channel.token_updated_at if channel else None,
                authenticated_at=device.authenticated_at if device else None,
                revoked=False,  # no issued certificates here (see the module docstring)
                erase_acknowledged=erased,
                allowed_until=device.reenroll_allowed_until if device else None,
            )

    def allow_reenroll(self, device_id: str, until: datetime) -> bool:
        with self._lock:
            device = self.devices.get(device_id)
            if device is None:
                return False
            device.reenroll_allowed_until = until
            return True

    def use_allowance(self, device_id: str) -> datetime | None:
        now = utcnow()
        with self._lock:
            device = self.devices.get(device_id)
            until = device.reenroll_allowed_until if device else None
            if device is None or until is None or until <= now:
                return None
            device.reenroll_allowed_until = None
            return until

    # Command queue --------------------------------------------------------------------------

    def enqueue(
        self,
        command: Command,
        enrollment_ids: Sequence[str],
        *,
        priority: int = 0,
        expires_at: datetime | None = None,
        created_by: str | None = None,
    ) -> int:
        targets = list(dict.fromkeys(enrollment_ids))
        if not targets:
            return 0
        now = utcnow()
        with self._lock:
            if command.command_uuid in self.commands or any(
                t not in self.enrollments for t in targets
            ):
                raise UnknownEnrollment(
                    "a target enrollment does not exist, or the command UUID is already used"
                )
            stored = _Command(
                command.command_uuid,
                command.request_type,
                command.to_plist(),
                expires_at,
                created_by,
            )
            self.commands[stored.uuid] = stored
            first = self.rows[-1].id + 1 if self.rows else 1
            self.rows.extend(
                _Row(first + n, target, stored, priority, now) for n, target in enumerate(targets)
            )
        return len(targets)

    def next_command(self, enrollment_id: str, *, new_session: bool) -> NextCommand | None:
        now = utcnow()
        with self._lock:
            mine = [r for r in self.rows if r.enrollment_id == enrollment_id]
            if new_session:
                for row in mine:
                    if row.status == QueueStatus.NOTNOW:
                        row.status = QueueStatus.QUEUED
            waiting = [
                r
                for r in mine
                if r.status in (QueueStatus.QUEUED, QueueStatus.SENT) and r.live(now)
            ]
            if not waiting:
                return None
            row = min(waiting, key=lambda r: (-r.priority, r.id))
            row.status = QueueStatus.SENT
            row.sent_at = now
            return NextCommand(row.command.uuid, row.command.request_type, row.command.plist)

    def record_result(
        self, enrollment_id: str, command_uuid: str, status: QueueStatus, body: bytes
    ) -> Recorded:
        with self._lock:
            row = self._sent_row(enrollment_id, command_uuid)
            if row is None:
                return Recorded(ResultOutcome.NOT_SENT)
            if status == QueueStatus.NOTNOW:
                if row.status in (QueueStatus.SENT, QueueStatus.NOTNOW):
                    row.status = QueueStatus.NOTNOW
                    row.notnow_count += 1
                    return Recorded(ResultOutcome.RECORDED)
            elif row.status not in ANSWERED:
                row.status = status
                row.result = body
                row.answered_at = utcnow()
                return Recorded(ResultOutcome.RECORDED, row.command.request_type)
            return Recorded(ResultOutcome.DUPLICATE)

    def command_request_type(self, command_uuid: str) -> str | None:
        with self._lock:
            command = self.commands.get(command_uuid)
            return command.request_type if command else None

    def queue(self, enrollment_id: str, *, include_done: bool = False) -> list[QueueItem]:
        with self._lock:
            rows = [
                r
                for r in self.rows
                if r.enrollment_id == enrollment_id and (include_done or r.status in PENDING)
            ]
            return self._items(rows)

    def clear_queue(self, enrollment_id: str) -> int:
        with self._lock:
            return self._cancel_pending({enrollment_id}, keep_security=False)

    def command_targets(self, command_uuid: str) -> list[QueueItem]:
        with self._lock:
            return self._items([r for r in self.rows if r.command.uuid == command_uuid])

    def touch_many(self, seen: Sequence[Seen]) -> None:
        with self._lock:
            for entry in seen:
                channel = self.enrollments.get(entry.enrollment_id)
                if channel is not None and (
                    channel.last_seen_at is None or channel.last_seen_at < entry.at
                ):
                    channel.last_seen_at = entry.at
                device = self.devices.get(entry.device_id)
                if device is not None and (
                    device.last_seen_at is None or device.last_seen_at < entry.at
                ):
                    device.last_seen_at = entry.at

    # Helpers (called with the lock held) ----------------------------------------------------

    def _bound(self, device_id: str, fingerprint: str) -> bool:
        binding = self.bindings.get(fingerprint)
        return binding is not None and binding.device_id == device_id

    def _status(self, enrollment_id: str) -> EnrollmentStatus | None:
        channel = self.enrollments.get(enrollment_id)
        return channel.status if channel else None

    def _channels_of(self, device_id: str) -> list[_Enrollment]:
        return [e for e in self.enrollments.values() if e.device_id == device_id]

    def _cancel_pending(self, enrollment_ids: set[str], *, keep_security: bool = True) -> int:
        cancelled = 0
        for row in self.rows:
            if row.enrollment_id not in enrollment_ids or row.status not in PENDING:
                continue
            if keep_security and row.command.request_type in SECURITY_COMMANDS:
                continue
            row.status = QueueStatus.CANCELLED
            cancelled += 1
        return cancelled

    def _sent_row(self, enrollment_id: str, command_uuid: str) -> _Row | None:
        for row in self.rows:
            if (
                row.enrollment_id == enrollment_id
                and row.command.uuid == command_uuid
                and row.sent_at is not None
            ):
                return row
        return None

    def _event(self, kind: str, identity: EnrollmentIdentity, detail: str) -> None:
        self.events.append(Event(kind, identity.device_id, identity.id, detail))

    @staticmethod
    def _items(rows: list[_Row]) -> list[QueueItem]:
        now = utcnow()
        items = []
        for row in sorted(rows, key=lambda r: (-r.priority, r.id)):
            status = row.status
            if status in PENDING and not row.live(now):
                status = QueueStatus.EXPIRED
            items.append(
                QueueItem(
                    enrollment_id=row.enrollment_id,
                    command_uuid=row.command.uuid,
                    request_type=row.command.request_type,
                    status=status,
                    priority=row.priority,
                    created_at=row.created_at,
                    sent_at=row.sent_at,
                    answered_at=row.answered_at,
                    expires_at=row.command.expires_at,
                    result=row.result,
                )
            )
        return items
