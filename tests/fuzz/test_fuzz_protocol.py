"""Fuzzing the device protocol parsers: plist loading, check-in and command-result typing.

Property: a typed message or ProtocolError (answered 400), never another exception; and what
is returned keeps the bounds of mdmserver/bounds.py, so storing it cannot fail.
"""

from __future__ import annotations

import plistlib
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mdmserver.bounds import CHANNEL_ID, CHECKIN_TEXT, USER_CHANNEL_ID
from mdmserver.protocol.checkin import MESSAGE_TYPES, checkin_from, parse_checkin
from mdmserver.protocol.errors import ProtocolError
from mdmserver.protocol.plist import loads
from mdmserver.protocol.results import CommandResult, parse_result, result_from
from tests.fuzz.strategies import FUZZ, message_from, mutated

UDID = "0000FE00-3C9A-4B2C-8D7E-000000000001"
AUTHENTICATE = plistlib.dumps(
    {
        "MessageType": "Authenticate",
        "Topic": "com.apple.mgmt.External.test",
        "UDID": UDID,
        "SerialNumber": "C02TEST00001",
        "DeviceName": "Ann's iPhone",
        "Nested": [{"a": [1, 2.5, b"x"]}],
    }
)
RESULT = plistlib.dumps(
    {
        "UDID": UDID,
        "Status": "Error",
        "CommandUUID": "cmd-1",
        "ErrorChain": [{"ErrorCode": 12, "ErrorDomain": "MCProfileErrorDomain"}],
    }
)
ID_KEYS = ["UDID", "EnrollmentID", "UserID", "EnrollmentUserID", "UserShortName"]


def dumped(message: dict[str, Any]) -> bytes | None:
    """The message as XML, or None when XML cannot carry it (a control character, say)."""
    try:
        return plistlib.dumps(message)
    except (ValueError, OverflowError, TypeError):
        return None


def assert_in_bounds(identity: Any) -> None:
    for value, rule in ((identity.device_id, CHANNEL_ID), (identity.user_id, USER_CHANNEL_ID)):
        if value is not None:
            assert rule.problem(value) is None, value


@FUZZ
@given(st.one_of(mutated(AUTHENTICATE), mutated(RESULT), st.binary(max_size=300)))
def test_plist_loading(data: bytes) -> None:
    try:
        root = loads(data)
    except ProtocolError:
        return
    assert isinstance(root, dict)


@FUZZ
@given(
    st.sampled_from(sorted(MESSAGE_TYPES)).flatmap(
        lambda name: message_from(
            [key.name for key in MESSAGE_TYPES[name].KEYS] + ID_KEYS, {"MessageType": name}
        )
    )
)
def test_checkin_typing(message: dict[str, Any]) -> None:
    try:
        typed = checkin_from(message)
    except ProtocolError:
        return
    assert isinstance(typed, tuple(MESSAGE_TYPES.values()))
    assert_in_bounds(typed.identity)
    for key in type(typed).KEYS:
        value = message.get(key.name)
        if isinstance(value, str) and key.name in CHECKIN_TEXT:
            assert CHECKIN_TEXT[key.name].problem(value) is None, (key.name, value)
    body = dumped(message)
    if body is not None:  # the same dictionary through the wire format types the same
        assert parse_checkin(body) == typed


@FUZZ
@given(
    message_from(
        ["Status", "CommandUUID", "ErrorChain", "NotOnConsole", "UserLongName", *ID_KEYS],
        {},
    ),
    st.sampled_from(["Idle", "Acknowledged", "Error", "NotNow", "CommandFormatError", None]),
)
def test_result_typing(message: dict[str, Any], status: str | None) -> None:
    if status is not None:
        message = {**message, "Status": status}
    try:
        typed = result_from(message)
    except ProtocolError:
        return
    assert isinstance(typed, CommandResult)
    assert_in_bounds(typed.identity)
    body = dumped(message)
    if body is not None:
        assert parse_result(body) == typed
