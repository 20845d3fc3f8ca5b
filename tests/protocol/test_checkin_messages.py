"""Synthetic check-ins: every message type, every key's type check, every refusal."""

from __future__ import annotations

import plistlib
from typing import Any

import pytest

from mdmserver.protocol.checkin import (
    MESSAGE_TYPES,
    DeclarativeManagement,
    GetBootstrapToken,
    GetToken,
    SetBootstrapToken,
    TokenUpdate,
    UserAuthenticate,
    checkin_from,
    parse_checkin,
)
from mdmserver.protocol.enrollment_id import SHARED_IPAD_USER_ID, EnrollmentType
from mdmserver.protocol.errors import ProtocolError
from mdmserver.protocol.plist import type_name

UDID = "0A1B2C3D-0000-1111-2222-333344445555"
USER_ID = "11112222-3333-4444-5555-666677778888"
TOPIC = "com.apple.mgmt.External.6b9b1d22-0000-4c55-9c1c-000000000000"

# The smallest message of each type the server must accept.
MINIMAL: dict[str, dict[str, Any]] = {
    "Authenticate": {"Topic": TOPIC, "UDID": UDID},
    "TokenUpdate": {"Topic": TOPIC, "UDID": UDID, "Token": b"\x01\x02", "PushMagic": "PM-1"},
    "CheckOut": {"Topic": TOPIC, "UDID": UDID},
    "UserAuthenticate": {"UDID": UDID, "UserID": USER_ID},
    "SetBootstrapToken": {"UDID": UDID},
    "GetBootstrapToken": {"UDID": UDID},
    "DeclarativeManagement": {"UDID": UDID, "Endpoint": "tokens"},
    "GetToken": {"UDID": UDID, "TokenServiceType": "com.apple.maid"},
}

# A value of the wrong plist type for each kind a key can have.
WRONG: dict[type, Any] = {str: 5, bytes: "text", bool: 1, dict: ["x"], int: "1"}


def body(message_type: str, **keys: Any) -> bytes:
    return plistlib.dumps({"MessageType": message_type, **MINIMAL[message_type], **keys})


def refused(data: bytes) -> str:
    with pytest.raises(ProtocolError) as info:
        parse_checkin(data)
    return str(info.value)


def test_minimal_examples_cover_every_message_type() -> None:
    assert set(MINIMAL) == set(MESSAGE_TYPES)


@pytest.mark.parametrize("message_type", sorted(MINIMAL))
def test_minimal_message_parses_to_its_class(message_type: str) -> None:
    message = parse_checkin(body(message_type))
    assert type(message) is MESSAGE_TYPES[message_type]
    assert message.identity.device_id == UDID
    assert message.raw["MessageType"] == message_type


@pytest.mark.parametrize(
    ("message_type", "key"),
    [(name, key) for name, cls in sorted(MESSAGE_TYPES.items()) for key in cls.KEYS],
    ids=lambda value: getattr(value, "name", value),
)
def test_every_key_is_type_checked(message_type: str, key: Any) -> None:
    wrong = WRONG[key.kind]
    message = refused(body(message_type, **{key.name: wrong}))
    expected = f"{message_type}: key {key.name!r} must be {type_name(key.kind)}"
    assert message == f"{expected}, got {type_name(type(wrong))}"


@pytest.mark.parametrize(
    ("message_type", "key"),
    [
        (name, key.name)
        for name, cls in sorted(MESSAGE_TYPES.items())
        for key in cls.KEYS
        if key.required
    ],
)
def test_required_keys_are_enforced(message_type: str, key: str) -> None:
    keys = {"MessageType": message_type, **MINIMAL[message_type]}
    del keys[key]
    assert refused(plistlib.dumps(keys)) == f"{message_type}: key {key!r} is required"


def test_token_update_error_message_reads_well() -> None:
    assert (
        refused(body("TokenUpdate", Token="abc"))
        == "TokenUpdate: key 'Token' must be data, got string"
    )


def test_unknown_message_type_is_named() -> None:
    data = plistlib.dumps({"MessageType": "Frobnicate", "UDID": UDID})
    assert refused(data) == "unknown check-in MessageType 'Frobnicate'"


def test_missing_message_type() -> None:
    assert refused(plistlib.dumps({"UDID": UDID})) == "check-in: key 'MessageType' is required"


def test_missing_udid_and_enrollment_id() -> None:
    data = plistlib.dumps({"MessageType": "Authenticate", "Topic": TOPIC})
    assert refused(data) == "Authenticate: neither UDID nor EnrollmentID is present"


def test_unknown_keys_are_kept_not_refused() -> None:
    message = parse_checkin(body("Authenticate", FutureKey={"Nested": True}))
    assert message.raw["FutureKey"] == {"Nested": True}


def test_token_update_without_awaiting_configuration_means_unchanged() -> None:
    message = parse_checkin(body("TokenUpdate"))
    assert isinstance(message, TokenUpdate)
    assert message.awaiting_configuration is None
    assert message.token_hex == "0102"


def test_token_update_during_setup_assistant() -> None:
    message = parse_checkin(body("TokenUpdate", AwaitingConfiguration=True, UnlockToken=b"unlock"))
    assert isinstance(message, TokenUpdate)
    assert message.awaiting_configuration is True
    assert message.unlock_token == b"unlock"


def test_user_enrollment_token_update() -> None:
    data = plistlib.dumps(
        {
            "MessageType": "TokenUpdate",
            "Topic": TOPIC,
            "EnrollmentID": "ENR-42",
            "EnrollmentUserID": "EUSER-7",
            "Token": b"t",
            "PushMagic": "PM",
        }
    )
    message = parse_checkin(data)
    assert message.identity.type is EnrollmentType.USER_ENROLLMENT_USER
    assert message.identity.id == "ENR-42:EUSER-7"


def test_shared_ipad_user_token_update() -> None:
    message = parse_checkin(
        body("TokenUpdate", UserID=SHARED_IPAD_USER_ID, UserShortName="maria@example.org")
    )
    assert isinstance(message, TokenUpdate)
    assert message.identity.type is EnrollmentType.SHARED_IPAD_USER
    assert message.identity.id == f"{UDID}:maria@example.org"
    assert message.user_short_name == "maria@example.org"


def test_user_authenticate_rounds() -> None:
    first = parse_checkin(body("UserAuthenticate", UserShortName="cjoe"))
    assert isinstance(first, UserAuthenticate)
    assert first.digest_response is None
    assert first.identity.id == f"{UDID}:{USER_ID}"
    second = parse_checkin(body("UserAuthenticate", DigestResponse="resp"))
    assert isinstance(second, UserAuthenticate)
    assert second.digest_response == "resp"


def test_set_bootstrap_token() -> None:
    message = parse_checkin(
        body("SetBootstrapToken", BootstrapToken=b"secret", AwaitingConfiguration=True)
    )
    assert isinstance(message, SetBootstrapToken)
    assert message.bootstrap_token == b"secret"
    assert message.awaiting_configuration is True


def test_set_bootstrap_token_without_token_means_remove() -> None:
    message = parse_checkin(body("SetBootstrapToken"))
    assert isinstance(message, SetBootstrapToken)
    assert message.bootstrap_token is None


def test_get_bootstrap_token() -> None:
    message = parse_checkin(body("GetBootstrapToken", AwaitingConfiguration=False))
    assert isinstance(message, GetBootstrapToken)
    assert message.awaiting_configuration is False


def test_declarative_management_on_a_mac_user_channel() -> None:
    message = parse_checkin(
        body(
            "DeclarativeManagement",
            Endpoint="status",
            Data=b'{"StatusItems":{}}',
            UserID=USER_ID,
            UserShortName="cjoe",
            UserLongName="Commando Joe",
        )
    )
    assert isinstance(message, DeclarativeManagement)
    assert message.endpoint == "status"
    assert message.data == b'{"StatusItems":{}}'
    assert message.identity.type is EnrollmentType.USER
    assert message.user_long_name == "Commando Joe"


def test_get_token_with_parameters() -> None:
    params = {"PhoneUDID": "P", "WatchUDID": "W", "SecurityToken": "S"}
    message = parse_checkin(
        body("GetToken", TokenServiceType="com.apple.watch.pairing", TokenParameters=params)
    )
    assert isinstance(message, GetToken)
    assert message.token_service_type == "com.apple.watch.pairing"
    assert message.token_parameters == params


def test_checkin_from_accepts_an_already_parsed_mapping() -> None:
    message = checkin_from({"MessageType": "CheckOut", "Topic": TOPIC, "UDID": UDID})
    assert message.identity.id == UDID
    assert message.raw == {"MessageType": "CheckOut", "Topic": TOPIC, "UDID": UDID}


def test_result_body_sent_to_checkin_is_refused() -> None:
    data = plistlib.dumps({"Status": "Idle", "UDID": UDID})
    assert refused(data) == "check-in: key 'MessageType' is required"
