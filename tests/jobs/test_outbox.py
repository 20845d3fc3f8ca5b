"""The push outbox and the re-push policy on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.engine import make_engine
from mdmserver.storage.sql.outbox_store import OutboxStore
from mdmserver.storage.sql.push_store import PushResult, PushStore, RepushPolicy
from mdmserver.storage.sql.schema import command_queue, commands, devices, enrollments


def _engine(database_url: str):
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    return engine


def test_claims_do_not_overlap_and_released_rows_come_back(database_url):
    engine = _engine(database_url)
    outbox = OutboxStore(engine)
    assert outbox.add(["a", "b", "a", "c"]) == 3  # duplicates in one request coalesce
    first = outbox.claim(2)
    second = outbox.claim(10)
    assert [r.enrollment_id for r in first] == ["a", "b"]
    assert [r.enrollment_id for r in second] == ["c"]
    assert outbox.claim(10) == []  # all leased
    outbox.release(r.id for r in first)
    again = outbox.claim(10)
    assert [r.enrollment_id for r in again] == ["a", "b"]
    outbox.done(r.id for r in [*again, *second])
    assert outbox.pending() == 0
    engine.dispose()


def test_expired_lease_is_claimable_again(database_url):
    engine = _engine(database_url)
    outbox = OutboxStore(engine)
    outbox.add(["x"], repush=True)
    [row] = outbox.claim(5, lease=-1)  # a dispatcher that died mid-handover
    assert row.repush is True
    assert [r.id for r in outbox.claim(5)] == [row.id]
    engine.dispose()


def _enrolled_with_command(engine, eid: str, created: datetime, seen: datetime | None) -> None:
    with engine.begin() as conn:
        conn.execute(insert(devices).values(id=eid, created_at=created, updated_at=created))
        conn.execute(
            insert(enrollments).values(
                id=eid,
                device_id=eid,
                type="device",
                status="active",
                topic="com.apple.mgmt.External.t",
                push_token="ab" * 32,
                push_magic="magic",
                created_at=created,
                updated_at=created,
                last_seen_at=seen,
            )
        )
        conn.execute(
            insert(commands).values(
                uuid=f"cmd-{eid}", request_type="ProfileList", plist=b"x", created_at=created
            )
        )
        conn.execute(
            insert(command_queue).values(
                enrollment_id=eid, command_uuid=f"cmd-{eid}", status="queued", created_at=created
            )
        )


def test_repush_policy(database_url):
    engine = _engine(database_url)
    store = PushStore(engine)
    now = datetime.now(UTC)
    policy = RepushPolicy(timedelta(minutes=10), max_attempts=2, grace=timedelta(seconds=30))
    _enrolled_with_command(engine, "new", now - timedelta(seconds=5), None)
    _enrolled_with_command(engine, "old", now - timedelta(hours=1), None)
    # "new" is inside the grace period (its own push request had its chance); "old" never pushed.
    assert store.due(policy, now=now) == (["old"], [])

    store.record([PushResult("old", "delivered")], repush=False)
    assert store.due(policy, now=now) == ([], [])  # just pushed
    later = now + timedelta(minutes=11)
    assert store.due(policy, now=later) == (["new"], ["old"])  # silent: re-push
    store.record([PushResult("old", "delivered")], repush=True)
    assert store.status("old")["attempts"] == 1
    # Back-off doubles: 20 minutes after the first re-push (recorded just now), not 10.
    assert "old" not in store.due(policy, now=now + timedelta(minutes=15))[1]
    assert "old" in store.due(policy, now=now + timedelta(minutes=21))[1]
    store.record([PushResult("old", "delivered")], repush=True)
    assert "old" not in store.due(policy, now=now + timedelta(days=1))[1]  # max attempts
    engine.dispose()


def test_stale_marking_keeps_a_newer_token(database_url):
    engine = _engine(database_url)
    store = PushStore(engine)
    _enrolled_with_command(engine, "dev", datetime.now(UTC), None)
    assert store.mark_stale([("dev", "cd" * 32)]) == 0  # not its token any more
    assert [r.enrollment_id for r in store.targets(["dev"])] == ["dev"]
    assert store.mark_stale([("dev", "ab" * 32)]) == 1
    assert store.targets(["dev"]) == []
    engine.dispose()
