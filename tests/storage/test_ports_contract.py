"""One set of assertions for every implementation of the device ports: the SQL one on SQLite
and on PostgreSQL, and the in-memory one the service-layer unit tests run on. A rule the
in-memory store gets wrong (queue order, NotNow, duplicates, what a new enrollment cancels)
fails here, so the unit tests cannot pass on behaviour the real server does not have."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from mdmserver.protocol.commands import new_command
from mdmserver.protocol.enrollment_id import EnrollmentIdentity, EnrollmentType
from mdmserver.service.reenroll import ReenrollStore
from mdmserver.storage.base import (
    Access,
    DeviceRecord,
    EnrollmentStatus,
    QueueStatus,
    Recorded,
    ResultOutcome,
    Seen,
    Storage,
    TokenRecord,
    UnknownEnrollment,
)
from mdmserver.storage.memory import MemoryStorage
from mdmserver.storage.sql.types import utcnow

TOPIC = "com.apple.mgmt.External.test"
DATABASES = [
    name.strip()
    for name in os.environ.get("MDM_TEST_DATABASES", "sqlite,postgresql").split(",")
    if name.strip()
]


@pytest.fixture(params=["memory", *DATABASES])
def ports(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "memory":
        yield MemoryStorage()
        return
    from mdmserver.storage.sql import migrate
    from mdmserver.storage.sql.device_store import SQLStorage
    from mdmserver.storage.sql.engine import make_engine
    from mdmserver.storage.sql.schema import metadata

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ports.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
        scratch = create_engine(url)
        with scratch.begin() as conn:
            names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        scratch.dispose()
    engine = make_engine(url)
    migrate.upgrade(engine)
    storage = SQLStorage(engine)
    yield storage
    storage.dispose()


def device(udid: str = "UDID-1") -> EnrollmentIdentity:
    return EnrollmentIdentity(EnrollmentType.DEVICE, udid)


def user(udid: str = "UDID-1", user_id: str = "USER-1") -> EnrollmentIdentity:
    return EnrollmentIdentity(EnrollmentType.USER, udid, user_id)


def authenticate(ports: Storage, identity: EnrollmentIdentity) -> None:
    record = DeviceRecord(identity.device_id, False, TOPIC, serial_number="SERIAL")
    ports.authenticate(record, identity)


def token(identity: EnrollmentIdentity, push: str = "aa" * 32, **extra: object) -> TokenRecord:
    return TokenRecord(identity, TOPIC, push, "MAGIC", **extra)  # type: ignore[arg-type]


def enrolled(ports: Storage, udid: str = "UDID-1") -> EnrollmentIdentity:
    identity = device(udid)
    authenticate(ports, identity)
    ports.token_update(token(identity))
    return identity


def queue_command(ports: Storage, eid: str, request_type: str = "DeviceInformation", **kw):  # type: ignore[no-untyped-def]
    command = new_command(request_type)
    assert ports.enqueue(command, [eid], **kw) == 1
    return command


# Check-in -----------------------------------------------------------------------------------


def test_authenticate_then_token_update_activates_once(ports: Storage) -> None:
    identity = device()
    authenticate(ports, identity)
    assert ports.enrollment_status(identity.id) == EnrollmentStatus.PENDING
    assert ports.token_update(token(identity, unlock_token=b"unlock")) is True
    assert ports.token_update(token(identity, push="bb" * 32)) is False  # already active
    info = ports.enrollment(identity.id)
    assert info is not None
    assert info.status == EnrollmentStatus.ACTIVE
    assert (info.topic, info.push_token_hex, info.push_magic) == (TOPIC, "bb" * 32, "MAGIC")
    assert info.unlock_token == b"unlock"  # an absent UnlockToken keeps the stored one
    assert ports.enrollment("nobody") is None


def test_token_update_refuses_what_never_authenticated(ports: Storage) -> None:
    with pytest.raises(UnknownEnrollment):
        ports.token_update(token(device("STRANGER")))
    assert ports.enrollment("STRANGER") is None


def test_user_channel_needs_an_active_device_channel(ports: Storage) -> None:
    authenticate(ports, device())
    with pytest.raises(UnknownEnrollment):
        ports.token_update(token(user()))
    assert ports.enrollment(user().id) is None
    ports.token_update(token(device()))
    assert ports.token_update(token(user(), user_short_name="ann")) is True
    info = ports.enrollment(user().id)
    assert info is not None and info.status == EnrollmentStatus.ACTIVE
    assert (info.user_id, info.user_short_name, info.device_id) == ("USER-1", "ann", "UDID-1")


def test_check_out_ends_the_device_and_its_user_channels(ports: Storage) -> None:
    identity = enrolled(ports)
    ports.token_update(token(user()))
    ports.check_out(identity)
    assert ports.enrollment_status(identity.id) == EnrollmentStatus.CHECKED_OUT
    assert ports.enrollment_status(user().id) == EnrollmentStatus.CHECKED_OUT
    with pytest.raises(UnknownEnrollment):
        ports.check_out(identity)
    with pytest.raises(UnknownEnrollment):
        ports.token_update(token(identity))
    assert ports.enrollment_status(identity.id) == EnrollmentStatus.CHECKED_OUT


def test_bootstrap_token_round_trip(ports: Storage) -> None:
    identity = enrolled(ports)
    assert ports.get_bootstrap_token(identity.device_id) is None
    ports.set_bootstrap_token(identity.device_id, b"escrowed")
    assert ports.get_bootstrap_token(identity.device_id) == b"escrowed"
    authenticate(ports, identity)  # a new enrollment keeps the device's bootstrap token
    assert ports.get_bootstrap_token(identity.device_id) == b"escrowed"
    with pytest.raises(UnknownEnrollment):
        ports.set_bootstrap_token("STRANGER", b"x")
    with pytest.raises(UnknownEnrollment):
        ports.get_bootstrap_token("STRANGER")


# Certificate binding ------------------------------------------------------------------------


def test_a_certificate_speaks_for_one_device(ports: Storage) -> None:
    one, two = enrolled(ports, "UDID-1"), enrolled(ports, "UDID-2")
    ports.bind_certificate(one.device_id, "FP-1", None, replace=False)
    assert ports.device_for_certificate("FP-1") == "UDID-1"
    assert ports.is_bound("UDID-1", "FP-1") and not ports.is_bound("UDID-2", "FP-1")
    with pytest.raises(ValueError, match="another device"):
        ports.bind_certificate(two.device_id, "FP-1", None, replace=True)
    assert ports.device_for_certificate("FP-1") == "UDID-1"
    assert ports.access("UDID-1", one.id, "FP-1") == Access(True, EnrollmentStatus.ACTIVE)
    assert ports.access("UDID-2", two.id, "FP-1") == Access(False, EnrollmentStatus.ACTIVE)
    assert ports.access("UDID-9", "UDID-9", "FP-9") == Access(False, None)


def test_replace_drops_the_device_s_other_certificates(ports: Storage) -> None:
    identity = enrolled(ports)
    ports.bind_certificate(identity.device_id, "FP-OLD", None, replace=False)
    ports.bind_certificate(identity.device_id, "FP-KEPT", None, replace=False)
    assert ports.is_bound(identity.device_id, "FP-OLD")  # renewal without replace: both
    ports.bind_certificate(identity.device_id, "FP-NEW", utcnow(), replace=True)
    assert not ports.is_bound(identity.device_id, "FP-OLD")
    assert not ports.is_bound(identity.device_id, "FP-KEPT")
    assert ports.device_for_certificate("FP-NEW") == identity.device_id


# Command queue ------------------------------------------------------------------------------


def test_next_command_by_priority_then_age(ports: Storage) -> None:
    eid = enrolled(ports).id
    first = queue_command(ports, eid)
    second = queue_command(ports, eid)
    urgent = queue_command(ports, eid, priority=10)
    order = [urgent, first, second]
    assert [q.command_uuid for q in ports.queue(eid)] == [c.command_uuid for c in order]
    got = ports.next_command(eid, new_session=True)
    assert got is not None
    assert (got.command_uuid, got.request_type) == (urgent.command_uuid, "DeviceInformation")
    assert got.plist == urgent.to_plist()
    # Sent but unanswered: offered again (a device that lost the answer asks again).
    again = ports.next_command(eid, new_session=True)
    assert again is not None and again.command_uuid == urgent.command_uuid
    statuses = {q.command_uuid: q.status for q in ports.queue(eid)}
    assert statuses[urgent.command_uuid] == QueueStatus.SENT
    assert statuses[first.command_uuid] == QueueStatus.QUEUED


def test_results_recorded_once(ports: Storage) -> None:
    eid = enrolled(ports).id
    command = queue_command(ports, eid, "ProfileList")
    waiting = queue_command(ports, eid)
    # Not sent yet: a result for it is refused, and changes nothing.
    unsent = ports.record_result(eid, command.command_uuid, QueueStatus.ACKNOWLEDGED, b"x")
    assert unsent.outcome == ResultOutcome.NOT_SENT
    assert ports.next_command(eid, new_session=True).command_uuid == command.command_uuid  # type: ignore[union-attr]
    done = ports.record_result(eid, command.command_uuid, QueueStatus.ACKNOWLEDGED, b"<plist/>")
    assert done == Recorded(ResultOutcome.RECORDED, "ProfileList")
    again = ports.record_result(eid, command.command_uuid, QueueStatus.ERROR, b"late")
    assert again.outcome == ResultOutcome.DUPLICATE
    stranger = ports.record_result(eid, "NO-SUCH-UUID", QueueStatus.ACKNOWLEDGED, b"")
    assert stranger.outcome == ResultOutcome.NOT_SENT
    answered = {q.command_uuid: q for q in ports.queue(eid, include_done=True)}
    assert answered[command.command_uuid].status == QueueStatus.ACKNOWLEDGED
    assert answered[command.command_uuid].result == b"<plist/>"  # not the late ERROR
    assert answered[command.command_uuid].answered_at is not None
    assert [q.command_uuid for q in ports.queue(eid)] == [waiting.command_uuid]
    assert ports.next_command(eid, new_session=False).command_uuid == waiting.command_uuid  # type: ignore[union-attr]


def test_notnow_waits_for_the_next_session(ports: Storage) -> None:
    eid = enrolled(ports).id
    busy = queue_command(ports, eid, priority=5)
    other = queue_command(ports, eid)
    assert ports.next_command(eid, new_session=True).command_uuid == busy.command_uuid  # type: ignore[union-attr]
    notnow = ports.record_result(eid, busy.command_uuid, QueueStatus.NOTNOW, b"")
    assert notnow.outcome == ResultOutcome.RECORDED
    # Same session: the NotNow'd command is skipped, the next one goes out.
    assert ports.next_command(eid, new_session=False).command_uuid == other.command_uuid  # type: ignore[union-attr]
    ports.record_result(eid, other.command_uuid, QueueStatus.ACKNOWLEDGED, b"")
    assert ports.next_command(eid, new_session=False) is None
    # A new session (Idle) offers it again.
    assert ports.next_command(eid, new_session=True).command_uuid == busy.command_uuid  # type: ignore[union-attr]
    assert ports.record_result(eid, busy.command_uuid, QueueStatus.ACKNOWLEDGED, b"").outcome == (
        ResultOutcome.RECORDED
    )
    late = ports.record_result(eid, busy.command_uuid, QueueStatus.NOTNOW, b"")
    assert late.outcome == ResultOutcome.DUPLICATE  # NotNow after the answer changes nothing
    statuses = {q.command_uuid: q.status for q in ports.queue(eid, include_done=True)}
    assert statuses[busy.command_uuid] == QueueStatus.ACKNOWLEDGED


def test_expired_commands_are_not_delivered(ports: Storage) -> None:
    eid = enrolled(ports).id
    stale = queue_command(ports, eid, priority=9, expires_at=utcnow() - timedelta(seconds=1))
    fresh = queue_command(ports, eid, expires_at=utcnow() + timedelta(hours=1))
    assert ports.next_command(eid, new_session=True).command_uuid == fresh.command_uuid  # type: ignore[union-attr]
    statuses = {q.command_uuid: q.status for q in ports.queue(eid)}
    assert statuses[stale.command_uuid] == QueueStatus.EXPIRED


def test_enqueue_is_all_or_nothing(ports: Storage) -> None:
    one, two = enrolled(ports, "UDID-1").id, enrolled(ports, "UDID-2").id
    command = new_command("DeviceInformation")
    assert ports.enqueue(command, [one, two, one]) == 2  # duplicates count once
    assert [q.enrollment_id for q in ports.command_targets(command.command_uuid)] == [one, two]
    assert ports.command_request_type(command.command_uuid) == "DeviceInformation"
    assert ports.command_request_type("NO-SUCH-UUID") is None
    with pytest.raises(UnknownEnrollment):
        ports.enqueue(command, [one])  # the UUID is taken
    lost = new_command("DeviceInformation")
    with pytest.raises(UnknownEnrollment):
        ports.enqueue(lost, [one, "NOBODY"])
    assert ports.command_targets(lost.command_uuid) == []
    assert ports.command_request_type(lost.command_uuid) is None
    assert ports.enqueue(new_command("DeviceInformation"), []) == 0


def test_a_new_enrollment_cancels_all_but_security_commands(ports: Storage) -> None:
    identity = enrolled(ports)
    info = queue_command(ports, identity.id)
    lock = queue_command(ports, identity.id, "DeviceLock")
    authenticate(ports, identity)  # the device enrolled again
    statuses = {q.command_uuid: q.status for q in ports.queue(identity.id, include_done=True)}
    assert statuses == {info.command_uuid: QueueStatus.CANCELLED, lock.command_uuid: "queued"}
    assert ports.enrollment_status(identity.id) == EnrollmentStatus.PENDING
    ports.token_update(token(identity))
    assert ports.next_command(identity.id, new_session=True).command_uuid == lock.command_uuid  # type: ignore[union-attr]


def test_check_out_cancels_all_but_security_commands(ports: Storage) -> None:
    identity = enrolled(ports)
    info = queue_command(ports, identity.id)
    wipe = queue_command(ports, identity.id, "EraseDevice")
    ports.check_out(identity)
    assert [q.command_uuid for q in ports.queue(identity.id)] == [wipe.command_uuid]
    done = {q.command_uuid: q.status for q in ports.queue(identity.id, include_done=True)}
    assert done[info.command_uuid] == QueueStatus.CANCELLED


def test_clear_queue_cancels_everything_pending(ports: Storage) -> None:
    eid = enrolled(ports).id
    sent = queue_command(ports, eid, priority=1)
    queue_command(ports, eid, "DeviceLock")
    ports.next_command(eid, new_session=True)
    ports.record_result(eid, sent.command_uuid, QueueStatus.ACKNOWLEDGED, b"")
    queue_command(ports, eid)
    assert ports.clear_queue(eid) == 2  # the lock too: an admin asked for it
    assert ports.queue(eid) == []
    assert ports.next_command(eid, new_session=True) is None
    assert ports.clear_queue(eid) == 0


# Last seen ----------------------------------------------------------------------------------


def test_last_seen_never_moves_backwards(ports: Storage) -> None:
    identity = enrolled(ports)
    now = utcnow()
    ports.touch_many([Seen(identity.id, identity.device_id, now)])
    ports.touch_many([Seen(identity.id, identity.device_id, now - timedelta(minutes=5))])
    info = ports.enrollment(identity.id)
    assert info is not None and info.last_seen_at == now
    assert info.last_seen_at.utcoffset() == timedelta(0)  # aware UTC from every backend
    later = now + timedelta(seconds=30)
    ports.touch_many([Seen(identity.id, identity.device_id, later), Seen("NOBODY", "NONE", now)])
    assert ports.enrollment(identity.id).last_seen_at == later  # type: ignore[union-attr]


# What the re-enrollment rule reads ----------------------------------------------------------


@pytest.fixture
def reenroll_store(ports: Storage) -> ReenrollStore:
    """The in-memory store answers these itself; in SQL they are the enrollment store's."""
    if isinstance(ports, MemoryStorage):
        return ports
    from mdmserver.storage.sql.enrollment_store import EnrollmentStore

    return EnrollmentStore(ports.engine)  # type: ignore[attr-defined]


def test_current_binding_tells_the_rule_what_it_weighs(
    ports: Storage, reenroll_store: ReenrollStore
) -> None:
    identity = enrolled(ports)
    assert reenroll_store.current_binding(identity.device_id) is None  # nothing bound yet
    expiry = utcnow() + timedelta(days=365)
    ports.bind_certificate(identity.device_id, "FP-1", expiry, replace=True)
    current = reenroll_store.current_binding(identity.device_id)
    assert current is not None
    assert (current.fingerprint, current.not_after, current.status) == ("FP-1", expiry, "active")
    assert current.enrolled_with_it() and not current.erase_acknowledged
    erase = queue_command(ports, identity.id, "EraseDevice")
    ports.next_command(identity.id, new_session=True)
    ports.record_result(identity.id, erase.command_uuid, QueueStatus.ACKNOWLEDGED, b"")
    assert reenroll_store.current_binding(identity.device_id).erase_acknowledged  # type: ignore[union-attr]
    ports.check_out(identity)
    assert not reenroll_store.current_binding(identity.device_id).enrolled_with_it()  # type: ignore[union-attr]


def test_an_allowance_is_used_once(ports: Storage, reenroll_store: ReenrollStore) -> None:
    identity = enrolled(ports)
    until = utcnow() + timedelta(minutes=10)
    assert reenroll_store.use_allowance(identity.device_id) is None
    assert reenroll_store.allow_reenroll(identity.device_id, until) is True
    assert reenroll_store.use_allowance(identity.device_id) == until
    assert reenroll_store.use_allowance(identity.device_id) is None  # spent
    reenroll_store.allow_reenroll(identity.device_id, utcnow() - timedelta(seconds=1))
    assert reenroll_store.use_allowance(identity.device_id) is None  # expired
    assert reenroll_store.allow_reenroll("STRANGER", until) is False
