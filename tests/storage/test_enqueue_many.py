"""Queueing one command to many enrollments: all or nothing, on both backends and both paths."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select

from mdmserver.protocol.commands import new_command
from mdmserver.storage.base import UnknownEnrollment
from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.device_store import SQLStorage
from mdmserver.storage.sql.engine import make_engine
from mdmserver.storage.sql.schema import command_queue, commands, devices, enrollments
from mdmserver.storage.sql.types import utcnow


@pytest.fixture
def storage(database_url):
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    store = SQLStorage(engine)
    now = utcnow()
    ids = [f"DEVICE-{n:05d}" for n in range(700)]
    with engine.begin() as conn:
        conn.execute(
            insert(devices), [{"id": i, "created_at": now, "updated_at": now} for i in ids]
        )
        conn.execute(
            insert(enrollments),
            [
                {
                    "id": i,
                    "device_id": i,
                    "type": "device",
                    "status": "active",
                    "created_at": now,
                    "updated_at": now,
                }
                for i in ids
            ],
        )
    yield store, ids
    store.dispose()


def count(store: SQLStorage, table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


@pytest.mark.parametrize("size", [3, 700])  # the plain insert, and PostgreSQL's array fan-out
def test_one_command_to_many(storage, size):
    store, ids = storage
    command = new_command("DeviceInformation", {"Queries": ["OSVersion"]})
    assert store.enqueue(command, ids[:size] + ids[:1]) == size  # duplicates collapse
    targets = store.command_targets(command.command_uuid)
    assert sorted(t.enrollment_id for t in targets) == sorted(ids[:size])
    assert {t.status for t in targets} == {"queued"}


@pytest.mark.parametrize("size", [3, 700])
def test_an_unknown_target_stores_nothing(storage, size):
    store, ids = storage
    with pytest.raises(UnknownEnrollment):
        store.enqueue(new_command("DeviceLock"), [*ids[: size - 1], "NO-SUCH-DEVICE"])
    assert count(store, commands) == 0
    assert count(store, command_queue) == 0
