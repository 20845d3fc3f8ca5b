"""Every poll looks up the enrollment's next command: that lookup must read the queue through
ix_command_queue_next in its order, not scan or sort the queue (which keeps all history)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, text

from mdmserver.protocol.commands import new_command
from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.engine import make_engine
from mdmserver.storage.sql.schema import command_queue, commands, devices, enrollments
from mdmserver.storage.sql.statements import NEXT, NEXT_NEW_SESSION_PG
from mdmserver.storage.sql.types import driver_timestamp, utcnow

ENROLLMENTS = 40
PER_ENROLLMENT = 50


def _seed(engine: Any) -> None:
    now = utcnow()
    ids = [f"DEVICE-{n:03d}" for n in range(ENROLLMENTS)]
    rows = [{"created_at": now, "updated_at": now}] * ENROLLMENTS
    command_rows, queue_rows = [], []
    for index, enrollment_id in enumerate(ids * PER_ENROLLMENT):
        command = new_command("DeviceInformation", {"Queries": ["OSVersion"]})
        command_rows.append(
            {
                "uuid": command.command_uuid,
                "request_type": command.request_type,
                "plist": command.to_plist(),
                "created_at": now,
            }
        )
        # Mostly history, as in a real queue: answered commands outnumber pending ones.
        status = "queued" if index % 10 == 0 else "acknowledged"
        queue_rows.append(
            {"enrollment_id": enrollment_id, "command_uuid": command.command_uuid}
            | {"status": status, "priority": index % 3, "created_at": now}
        )
    with engine.begin() as conn:
        conn.execute(insert(devices), [{"id": i, **r} for i, r in zip(ids, rows, strict=True)])
        channel = {"type": "device", "status": "active"}
        conn.execute(
            insert(enrollments),
            [{"id": i, "device_id": i, **channel, **r} for i, r in zip(ids, rows, strict=True)],
        )
        conn.execute(insert(commands), command_rows)
        conn.execute(insert(command_queue), queue_rows)
        conn.execute(text("ANALYZE"))


def _plan(engine: Any, statement: str) -> str:
    params = {"enrollment_id": "DEVICE-007", "now": utcnow()}
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            params["now"] = driver_timestamp(params["now"], sqlite=True)
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
            return "\n".join(str(row[-1]) for row in rows)
        # Tables this small are cheaper to scan; the question is whether the index serves
        # the ORDER BY (with priority ascending in the index, PostgreSQL had to sort).
        conn.execute(text("SET enable_seqscan = off"))
        conn.execute(text("SET enable_bitmapscan = off"))
        rows = conn.execute(text("EXPLAIN " + statement), params)
        return "\n".join(row[0] for row in rows)


def test_next_command_reads_the_index_in_order(database_url):
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    _seed(engine)
    statements = [NEXT] if engine.dialect.name == "sqlite" else [NEXT, NEXT_NEW_SESSION_PG]
    for statement in statements:
        plan = _plan(engine, statement)
        assert "ix_command_queue_next" in plan, plan
        assert "SCAN q" not in plan and "TEMP B-TREE" not in plan, plan  # SQLite
        assert "Seq Scan on command_queue" not in plan and "Sort" not in plan, plan  # PostgreSQL
    engine.dispose()
