"""The SQL implementation of the device ports (check-in, queue, certificate binding, last seen).

The hot paths (an Idle poll, a result plus the next command) run on the raw DB-API cursor with
as few round trips as the answer allows (an empty Idle is a single SELECT); their statements,
with the SQLite and PostgreSQL variants, are in :mod:`mdmserver.storage.sql.statements`.
Everything else is SQLAlchemy Core.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from mdmserver.protocol.commands import SECURITY_COMMANDS, Command
from mdmserver.protocol.enrollment_id import EnrollmentIdentity
from mdmserver.storage.base import (
    Access,
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
from mdmserver.storage.sql import dialect, statements
from mdmserver.storage.sql.compliance_store import reset_state
from mdmserver.storage.sql.inventory_store import forget_facts
from mdmserver.storage.sql.rawsql import RawSQL
from mdmserver.storage.sql.schema import (
    cert_bindings,
    command_queue,
    commands,
    devices,
    enrollments,
    events,
)
from mdmserver.storage.sql.statements import PENDING_ANY_SESSION
from mdmserver.storage.sql.types import utcnow

REENROLLED = "enrolled again: waiting for fresh inventory"


def _cancel_pending(conn: Connection, channel_ids: Any) -> None:
    """Cancel what waits for these enrollments, except the security commands (a lock or a
    wipe survives a CheckOut or a new enrollment, and is delivered once the device is back)."""
    # Correlated on the commands primary key: only this device's pending rows are looked at.
    security = exists().where(
        commands.c.uuid == command_queue.c.command_uuid,
        commands.c.request_type.in_(SECURITY_COMMANDS),
    )
    conn.execute(
        update(command_queue)
        .where(command_queue.c.enrollment_id.in_(channel_ids), PENDING_ANY_SESSION, ~security)
        .values(status=QueueStatus.CANCELLED.value)
    )


class SQLStorage:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.raw = RawSQL(engine)
        self.hot = statements.for_database(sqlite=self.raw.is_sqlite)

    def dispose(self, close: bool = True) -> None:
        """``close=False`` after a fork: forget the parent's connections without closing them."""
        self.raw.dispose(close=close)
        self.engine.dispose(close=close)

    # Check-in -------------------------------------------------------------------------------

    def authenticate(self, device: DeviceRecord, identity: EnrollmentIdentity) -> None:
        now = utcnow()
        fields = {
            "serial_number": device.serial_number,
            "user_enrollment": device.user_enrollment,
            "model": device.model,
            "model_name": device.model_name,
            "product_name": device.product_name,
            "os_version": device.os_version,
            "build_version": device.build_version,
            "device_name": device.device_name,
            "imei": device.imei,
            "meid": device.meid,
            "topic": device.topic,
            "enrolled": False,
            "authenticated_at": now,
            "checked_out_at": None,
            "updated_at": now,
        }
        with self.engine.begin() as conn:
            updated = conn.execute(
                update(devices).where(devices.c.id == device.device_id).values(**fields)
            ).rowcount
            if not updated:
                conn.execute(insert(devices).values(id=device.device_id, created_at=now, **fields))
            # A new enrollment of the same device: what was queued for the old one is void
            # (profiles encrypted to the old identity among it), except the security commands.
            channel_ids = select(enrollments.c.id).where(
                enrollments.c.device_id == device.device_id
            )
            _cancel_pending(conn, channel_ids)
            # Nothing the previous enrollment reported vouches for this one: compliance (and
            # the trust answer) is unknown until fresh inventory arrives.
            forget_facts(conn, device.device_id)
            reset_state(conn, device.device_id, REENROLLED, now)
            conn.execute(
                update(enrollments)
                .where(enrollments.c.device_id == device.device_id)
                .values(
                    status=EnrollmentStatus.PENDING.value,
                    push_token=None,
                    push_magic=None,
                    unlock_token=None,
                    token_stale=False,
                    awaiting_configuration=False,
                    topic=device.topic,
                    updated_at=now,
                )
            )
            if not conn.execute(
                select(enrollments.c.id).where(enrollments.c.id == identity.id)
            ).first():
                conn.execute(
                    insert(enrollments).values(
                        id=identity.id,
                        device_id=identity.device_id,
                        type=identity.type.value,
                        topic=device.topic,
                        status=EnrollmentStatus.PENDING.value,
                        created_at=now,
                        updated_at=now,
                    )
                )
            self._event(conn, "Authenticate", identity, "")

    def token_update(self, token: TokenRecord) -> bool:
        """Store how to wake the enrollment; True when this activated it (first TokenUpdate)."""
        identity = token.identity
        now = utcnow()
        values: dict[str, Any] = {
            "topic": token.topic,
            "push_token": token.push_token_hex,
            "push_magic": token.push_magic,
            "token_stale": False,
            "status": EnrollmentStatus.ACTIVE.value,
            "updated_at": now,
            "token_updated_at": now,
        }
        if token.unlock_token is not None:
            values["unlock_token"] = token.unlock_token
        if token.awaiting_configuration is not None:
            values["awaiting_configuration"] = token.awaiting_configuration
        if token.user_short_name is not None:
            values["user_short_name"] = token.user_short_name
        if token.user_long_name is not None:
            values["user_long_name"] = token.user_long_name
        with self.engine.begin() as conn:
            parent = self._channel_status(conn, identity.device_id)
            if parent is None or parent == EnrollmentStatus.CHECKED_OUT:
                raise UnknownEnrollment(f"device {identity.device_id} has not authenticated")
            before = self._channel_status(conn, identity.id)
            if identity.is_user_channel:
                if parent != EnrollmentStatus.ACTIVE:
                    raise UnknownEnrollment("user channel before the device channel's TokenUpdate")
                updated = conn.execute(
                    update(enrollments).where(enrollments.c.id == identity.id).values(**values)
                ).rowcount
                if not updated:
                    conn.execute(
                        insert(enrollments).values(
                            id=identity.id,
                            device_id=identity.device_id,
                            type=identity.type.value,
                            user_id=identity.user_id,
                            created_at=now,
                            **values,
                        )
                    )
            else:
                conn.execute(
                    update(enrollments).where(enrollments.c.id == identity.id).values(**values)
                )
                conn.execute(
                    update(devices)
                    .where(devices.c.id == identity.device_id)
                    .values(enrolled=True, updated_at=now)
                )
            self._event(conn, "TokenUpdate", identity, "")
        return before != EnrollmentStatus.ACTIVE

    def check_out(self, identity: EnrollmentIdentity) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            status = self._channel_status(conn, identity.id)
            if status is None or status == EnrollmentStatus.CHECKED_OUT:
                raise UnknownEnrollment(f"enrollment {identity.id} is not enrolled")
            if identity.is_user_channel:
                channel_ids: Any = [identity.id]
            else:
                channel_ids = select(enrollments.c.id).where(
                    enrollments.c.device_id == identity.device_id
                )
                conn.execute(
                    update(devices)
                    .where(devices.c.id == identity.device_id)
                    .values(enrolled=False, checked_out_at=now, updated_at=now)
                )
            _cancel_pending(conn, channel_ids)
            conn.execute(
                update(enrollments)
                .where(enrollments.c.id.in_(channel_ids))
                .values(status=EnrollmentStatus.CHECKED_OUT.value, updated_at=now)
            )
            self._event(conn, "CheckOut", identity, "")

    def set_bootstrap_token(self, device_id: str, token: bytes | None) -> None:
        with self.engine.begin() as conn:
            updated = conn.execute(
                update(devices)
                .where(devices.c.id == device_id)
                .values(bootstrap_token=token, updated_at=utcnow())
            ).rowcount
            if not updated:
                raise UnknownEnrollment(f"device {device_id} is not known")

    def get_bootstrap_token(self, device_id: str) -> bytes | None:
        with self.engine.begin() as conn:
            row = conn.execute(
                select(devices.c.bootstrap_token).where(devices.c.id == device_id)
            ).first()
        if row is None:
            raise UnknownEnrollment(f"device {device_id} is not known")
        return row.bootstrap_token

    def enrollment(self, enrollment_id: str) -> EnrollmentInfo | None:
        with self.engine.begin() as conn:
            row = conn.execute(select(enrollments).where(enrollments.c.id == enrollment_id)).first()
        if row is None:
            return None
        return EnrollmentInfo(
            id=row.id,
            device_id=row.device_id,
            type=row.type,
            status=EnrollmentStatus(row.status),
            topic=row.topic,
            push_token_hex=row.push_token,
            push_magic=row.push_magic,
            token_stale=row.token_stale,
            awaiting_configuration=row.awaiting_configuration,
            unlock_token=row.unlock_token,
            user_id=row.user_id,
            user_short_name=row.user_short_name,
            last_seen_at=row.last_seen_at,
        )

    def record_event(self, kind: str, identity: EnrollmentIdentity, detail: str = "") -> None:
        with self.engine.begin() as conn:
            self._event(conn, kind, identity, detail)

    # Certificate binding --------------------------------------------------------------------

    def device_for_certificate(self, fingerprint: str) -> str | None:
        with self.engine.begin() as conn:
            return conn.execute(
                select(cert_bindings.c.device_id).where(cert_bindings.c.fingerprint == fingerprint)
            ).scalar()

    def is_bound(self, device_id: str, fingerprint: str) -> bool:
        with self.raw.cursor() as cur:
            params = {"device_id": device_id, "fingerprint": fingerprint}
            return self.raw.one(cur, self.hot.is_bound, params) is not None

    def access(self, device_id: str, enrollment_id: str, fingerprint: str) -> Access:
        params = {
            "device_id": device_id,
            "enrollment_id": enrollment_id,
            "fingerprint": fingerprint,
        }
        with self.raw.cursor() as cur:
            row = self.raw.one(cur, self.hot.access, params)
        assert row is not None  # a SELECT without FROM always returns its one row
        return Access(bool(row[0]), EnrollmentStatus(row[1]) if row[1] else None)

    def enrollment_status(self, enrollment_id: str) -> EnrollmentStatus | None:
        with self.raw.cursor() as cur:
            row = self.raw.one(cur, self.hot.enrollment_status, {"enrollment_id": enrollment_id})
        return EnrollmentStatus(row[0]) if row else None

    def bind_certificate(
        self, device_id: str, fingerprint: str, not_after: datetime | None, *, replace: bool
    ) -> None:
        with self.engine.begin() as conn:
            if replace:
                conn.execute(
                    delete(cert_bindings).where(
                        cert_bindings.c.device_id == device_id,
                        cert_bindings.c.fingerprint != fingerprint,
                    )
                )
            already = conn.execute(
                select(cert_bindings.c.device_id).where(cert_bindings.c.fingerprint == fingerprint)
            ).scalar()
            if already is None:
                conn.execute(
                    insert(cert_bindings).values(
                        device_id=device_id,
                        fingerprint=fingerprint,
                        not_after=not_after,
                        bound_at=utcnow(),
                    )
                )
            elif already != device_id:
                raise ValueError("certificate is bound to another device")

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
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(commands).values(
                        uuid=command.command_uuid,
                        request_type=command.request_type,
                        plist=command.to_plist(),
                        created_at=now,
                        expires_at=expires_at,
                        created_by=created_by,
                    )
                )
                fields = {
                    "command_uuid": command.command_uuid,
                    "status": QueueStatus.QUEUED.value,
                    "priority": priority,
                }
                if dialect.is_postgresql(conn) and len(targets) >= statements.FAN_OUT_THRESHOLD:
                    conn.execute(statements.FAN_OUT_PG, {**fields, "now": now, "targets": targets})
                else:
                    rows = [{**fields, "enrollment_id": t, "created_at": now} for t in targets]
                    conn.execute(insert(command_queue), rows)
        except IntegrityError as exc:
            raise UnknownEnrollment(
                "a target enrollment does not exist, or the command UUID is already used"
            ) from exc
        return len(targets)

    def next_command(self, enrollment_id: str, *, new_session: bool) -> NextCommand | None:
        with self.raw.cursor() as cur:
            return self._next(cur, enrollment_id, new_session=new_session)

    def record_result(
        self, enrollment_id: str, command_uuid: str, status: QueueStatus, body: bytes
    ) -> Recorded:
        params: dict[str, Any] = {"enrollment_id": enrollment_id, "command_uuid": command_uuid}
        # One autocommit statement: if the server dies before the next command goes out,
        # the next Idle re-sends it, so nothing is lost.
        with self.raw.cursor() as cur:
            hot = self.hot
            if status == QueueStatus.NOTNOW:
                if self.raw.run(cur, hot.record_notnow, params):
                    return Recorded(ResultOutcome.RECORDED)
            else:
                params.update(status=status.value, result=body, now=self.raw.timestamp(utcnow()))
                if hot.record_result_returns_type:
                    row = self.raw.one(cur, hot.record_result, params)
                    if row is not None:
                        return Recorded(ResultOutcome.RECORDED, row[0])
                elif self.raw.run(cur, hot.record_result, params):
                    row = self.raw.one(cur, hot.request_type, params)
                    return Recorded(ResultOutcome.RECORDED, row[0] if row else None)
            if self.raw.one(cur, hot.was_sent, params) is not None:
                return Recorded(ResultOutcome.DUPLICATE)
            return Recorded(ResultOutcome.NOT_SENT)

    def command_request_type(self, command_uuid: str) -> str | None:
        with self.raw.cursor() as cur:
            row = self.raw.one(cur, self.hot.request_type, {"command_uuid": command_uuid})
        return row[0] if row else None

    def queue(self, enrollment_id: str, *, include_done: bool = False) -> list[QueueItem]:
        query = self._items().where(command_queue.c.enrollment_id == enrollment_id)
        if not include_done:
            query = query.where(PENDING_ANY_SESSION)
        with self.engine.begin() as conn:
            return [self._item(row) for row in conn.execute(query)]

    def clear_queue(self, enrollment_id: str) -> int:
        with self.engine.begin() as conn:
            return conn.execute(
                update(command_queue)
                .where(command_queue.c.enrollment_id == enrollment_id, PENDING_ANY_SESSION)
                .values(status=QueueStatus.CANCELLED.value)
            ).rowcount

    def command_targets(self, command_uuid: str) -> list[QueueItem]:
        query = self._items().where(command_queue.c.command_uuid == command_uuid)
        with self.engine.begin() as conn:
            return [self._item(row) for row in conn.execute(query)]

    def touch_many(self, seen: Sequence[Seen]) -> None:
        """Last seen for many enrollments and their devices, in one transaction (a time never
        moves backwards: a late batch does not undo a newer one written by another process)."""
        if not seen:
            return
        channels = [{"eid": s.enrollment_id, "at": s.at} for s in seen]
        latest: dict[str, datetime] = {}
        for entry in seen:
            latest[entry.device_id] = max(entry.at, latest.get(entry.device_id, entry.at))
        owners = [{"did": did, "at": at} for did, at in latest.items()]
        with self.engine.begin() as conn:
            conn.execute(statements.TOUCH_ENROLLMENTS, channels)
            conn.execute(statements.TOUCH_DEVICES, owners)

    # Helpers --------------------------------------------------------------------------------

    def _next(self, cur: Any, enrollment_id: str, *, new_session: bool) -> NextCommand | None:
        now = self.raw.timestamp(utcnow())
        params = {"enrollment_id": enrollment_id, "now": now}
        hot = self.hot
        if hot.next_new_session is not None:  # one round trip picks, marks and resets
            row = self.raw.one(cur, hot.next_new_session if new_session else hot.next, params)
        else:
            # SQLite runs in process: three short statements cost less than one round trip.
            if new_session:
                self.raw.run(cur, hot.new_session, params)
            row = self.raw.one(cur, hot.next, params)
            if row is not None:
                self.raw.run(cur, hot.mark_sent, {"id": row[0], "now": now})
        if row is None:
            return None
        _, command_uuid, request_type, plist = row
        return NextCommand(command_uuid, request_type, bytes(plist))

    def _channel_status(self, conn: Connection, enrollment_id: str) -> EnrollmentStatus | None:
        status = conn.execute(
            select(enrollments.c.status).where(enrollments.c.id == enrollment_id)
        ).scalar()
        return EnrollmentStatus(status) if status else None

    @staticmethod
    def _event(conn: Connection, kind: str, identity: EnrollmentIdentity, detail: str) -> None:
        conn.execute(
            insert(events).values(
                at=utcnow(),
                device_id=identity.device_id,
                enrollment_id=identity.id,
                kind=kind,
                detail=detail,
            )
        )

    @staticmethod
    def _items() -> Any:
        return (
            select(
                command_queue.c.enrollment_id,
                command_queue.c.command_uuid,
                commands.c.request_type,
                command_queue.c.status,
                command_queue.c.priority,
                command_queue.c.created_at,
                command_queue.c.sent_at,
                command_queue.c.answered_at,
                commands.c.expires_at,
                command_queue.c.result,
            )
            .select_from(command_queue.join(commands))
            .order_by(command_queue.c.priority.desc(), command_queue.c.id)
        )

    @staticmethod
    def _item(row: Row[Any]) -> QueueItem:
        status = QueueStatus(row.status)
        expires_at = row.expires_at
        if status in (QueueStatus.QUEUED, QueueStatus.SENT, QueueStatus.NOTNOW) and (
            expires_at is not None and expires_at <= utcnow()
        ):
            status = QueueStatus.EXPIRED
        return QueueItem(
            enrollment_id=row.enrollment_id,
            command_uuid=row.command_uuid,
            request_type=row.request_type,
            status=status,
            priority=row.priority,
            created_at=row.created_at,
            sent_at=row.sent_at,
            answered_at=row.answered_at,
            expires_at=expires_at,
            result=row.result,
        )
