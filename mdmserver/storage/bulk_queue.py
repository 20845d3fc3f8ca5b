"""Queueing one command to many enrollments in one statement.

``SQLStorage.enqueue`` sends one parameter set per target; at 100,000 targets that is most of
the time spent. On PostgreSQL the targets travel as one array parameter and the rows are
built server-side with ``unnest``. Same rows, same transaction, same errors as the Storage
method; other backends simply use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import insert, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from mdmserver.protocol.commands import Command
from mdmserver.storage.base import QueueStatus, Storage, UnknownEnrollment
from mdmserver.storage.schema import commands

_FAN_OUT = text(
    "INSERT INTO command_queue (enrollment_id, command_uuid, status, priority, created_at)"
    " SELECT target, :command_uuid, :status, :priority, :now"
    " FROM unnest(CAST(:targets AS text[])) AS t(target)"
)
BULK_THRESHOLD = 500  # below this the ordinary path is just as quick


class BulkQueue:
    def __init__(self, engine: Engine, storage: Storage) -> None:
        self.engine = engine
        self.storage = storage
        self.fast = engine.dialect.name == "postgresql"

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
        if not self.fast or len(targets) < BULK_THRESHOLD:
            return self.storage.enqueue(
                command, targets, priority=priority, expires_at=expires_at, created_by=created_by
            )
        now = datetime.now(UTC)
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
                conn.execute(
                    _FAN_OUT,
                    {
                        "command_uuid": command.command_uuid,
                        "status": QueueStatus.QUEUED.value,
                        "priority": priority,
                        "now": now,
                        "targets": targets,
                    },
                )
        except IntegrityError as exc:
            raise UnknownEnrollment(
                "a target enrollment does not exist, or the command UUID is already used"
            ) from exc
        return len(targets)
