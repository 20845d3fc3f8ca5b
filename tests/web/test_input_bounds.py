"""Device strings outside their column's bound, over real HTTP with real signatures, on SQLite and
PostgreSQL: each is a 400 naming the key, and the database is exactly as it was.

Before mdmserver/bounds.py, PostgreSQL answered these with a 500 (DataError) and SQLite stored
them (a 100k-character UDID); a UDID "<victim>:<UserID>" landed on the victim's user channel.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mdmserver.storage.sql.schema import devices
from mdmserver.testing.device import VirtualDevice
from mdmserver.testing.http import drain, send, snapshot
from mdmserver.web.runtime import runtime

USER_ID = "5C1A9E5E-2B7B-4B3A-9E7C-7B8F2D0C1A11"


@pytest.fixture
def enrolled(live_server: str, pki) -> VirtualDevice:
    device = pki.device(key_type="ec")
    assert send(live_server, device.authenticate()).status_code == 200
    assert send(live_server, device.token_update()).status_code == 200
    drain(live_server, device)
    return device


@pytest.fixture
def victim(live_server: str, enrolled: VirtualDevice) -> VirtualDevice:
    """An enrolled Mac whose user channel has a push token and an UnlockToken."""
    user = {"UserID": USER_ID, "UserShortName": "alice", "UserLongName": "Alice"}
    reply = send(live_server, enrolled.token_update(**user, UnlockToken=b"victim-unlock"))
    assert reply.status_code == 200, reply.text
    return enrolled


def refused(app, live_server: str, request) -> str:
    """Send ``request``; assert a 400 and no change to any table; the message."""
    before = snapshot(runtime(app).engine)
    reply = send(live_server, request)
    assert reply.status_code == 400, reply.text
    assert snapshot(runtime(app).engine) == before, "a refused request changed the database"
    return reply.text


LONG_AUTHENTICATE = [
    ("UDID", "A" * 129, "longer than 128"),
    ("UDID", "A" * 100_000, "longer than 128"),
    ("OSVersion", "1" * 33, "longer than 32"),
    ("SerialNumber", "C" * 65, "longer than 64"),
    ("DeviceName", "n" * 10_000, "longer than 256"),
    # XML cannot carry NUL or most C0 controls (the parser refuses them); these it can.
    ("DeviceName", "iPhone\t", "control character"),
    ("UDID", "AB\x7fCD", "control character"),
    ("Model", "i\x85Phone", "control character"),
]


def test_authenticate_strings_beyond_their_column(app, live_server, pki):
    device = pki.device(key_type="ec")
    for key, value, message in LONG_AUTHENTICATE:
        text = refused(app, live_server, device.authenticate(**{key: value}))
        assert f"key {key!r}" in text and message in text, (key, text)


LONG_TOKEN_UPDATE = [
    ("PushMagic", "m" * 129, "longer than 128"),
    ("Token", b"t" * 300, "longer than 256 bytes"),
    ("UserID", "u" * 129, "longer than 128"),
    ("UserShortName", "s" * 257, "longer than 256"),
    ("UserLongName", "L" * 257, "longer than 256"),
    ("PushMagic", "magic\n", "control character"),
]


def test_token_update_strings_beyond_their_column(app, live_server, enrolled):
    for key, value, message in LONG_TOKEN_UPDATE:
        extra = {key: value}
        if key.startswith("User") and key != "UserID":
            extra["UserID"] = USER_ID
        text = refused(app, live_server, enrolled.token_update(**extra))
        assert f"key {key!r}" in text and message in text, (key, text)


def test_udid_naming_a_victims_user_channel(app, live_server, pki, victim):
    """The attack of issue #12: "<victim>:<UserID>" as a device UDID, with the attacker's own
    identity, would land on the victim's user-channel row (its push token, its UnlockToken)."""
    storage = runtime(app).storage
    channel = storage.enrollment(f"{victim.udid}:{USER_ID}")
    assert channel is not None and channel.unlock_token == b"victim-unlock"
    attacker = pki.device(key_type="ec", udid=f"{victim.udid}:{USER_ID}")
    for request in (attacker.authenticate(), attacker.token_update(UnlockToken=b"mine")):
        assert "key 'UDID' must not contain ':'" in refused(app, live_server, request)
    after = storage.enrollment(f"{victim.udid}:{USER_ID}")
    assert after == channel
    assert after.push_token_hex == channel.push_token_hex and after.unlock_token == b"victim-unlock"


def test_slash_in_channel_ids(app, live_server, enrolled, pki):
    """A UDID with '/' could not be addressed in the API (/api/v1/devices/<id>)."""
    request = pki.device(key_type="ec", udid="ABCD/1234").authenticate()
    assert "key 'UDID' must not contain '/'" in refused(app, live_server, request)
    request = enrolled.token_update(UserID="a/b")
    assert "key 'UserID' must not contain '/'" in refused(app, live_server, request)
    shared = {"UserID": "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", "UserShortName": "a:b"}
    text = refused(app, live_server, enrolled.token_update(**shared))
    assert "key 'UserShortName' must not contain ':'" in text


def test_user_enrollment_and_result_ids(app, live_server, pki, enrolled):
    device = pki.device(key_type="ec")
    message = {
        "MessageType": "Authenticate",
        "Topic": device.topic,
        "EnrollmentID": "E" * 129,
    }
    assert "key 'EnrollmentID' is longer than 128" in refused(
        app, live_server, device.checkin(message)
    )
    token_update = {
        "MessageType": "TokenUpdate",
        "Topic": device.topic,
        "EnrollmentID": "E1",
        "EnrollmentUserID": "U:1",
        "Token": b"t" * 32,
        "PushMagic": "m",
    }
    assert "key 'EnrollmentUserID' must not contain ':'" in refused(
        app, live_server, device.checkin(token_update)
    )
    assert "key 'UDID'" in refused(app, live_server, enrolled.result("Idle", UDID="x" * 200))
    text = refused(app, live_server, enrolled.result("Acknowledged", "c" * 65))
    assert "key 'CommandUUID' is longer than 64" in text


def test_values_at_the_bound_are_stored(app, live_server, pki):
    """The bound is the column, not less: a 128-character UDID with 256-character names enrolls."""
    device = pki.device(key_type="ec", udid="U" * 128)
    reply = send(live_server, device.authenticate(DeviceName="é" * 256, OSVersion="1" * 32))
    assert reply.status_code == 200, reply.text
    with runtime(app).engine.connect() as conn:
        row = conn.execute(select(devices).where(devices.c.id == "U" * 128)).one()
    assert row.device_name == "é" * 256 and row.os_version == "1" * 32
