"""Which channel a message came from, and its storage key."""

from __future__ import annotations

import pytest

from mdmserver.protocol.enrollment_id import (
    SHARED_IPAD_USER_ID,
    EnrollmentIdentity,
    EnrollmentType,
    identity_from,
)
from mdmserver.protocol.errors import ProtocolError

UDID = "E3568F17-92ED-450A-8904-C3BF4CB7E9A5"
USER_ID = "A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883"


def test_device_channel() -> None:
    identity = identity_from({"UDID": UDID})
    assert identity == EnrollmentIdentity(EnrollmentType.DEVICE, UDID, None)
    assert identity.id == UDID
    assert identity.parent_id == UDID
    assert identity.is_user_channel is False


def test_macos_user_channel_is_keyed_by_user_id() -> None:
    identity = identity_from({"UDID": UDID, "UserID": USER_ID, "UserShortName": "cjoe"})
    assert identity.type is EnrollmentType.USER
    assert identity.user_id == USER_ID
    assert identity.id == f"{UDID}:{USER_ID}"
    assert identity.parent_id == UDID
    assert identity.is_user_channel is True


def test_shared_ipad_user_is_keyed_by_short_name() -> None:
    message = {"UDID": UDID, "UserID": SHARED_IPAD_USER_ID, "UserShortName": "maria@example.org"}
    identity = identity_from(message)
    assert identity.type is EnrollmentType.SHARED_IPAD_USER
    assert identity.user_id == "maria@example.org"
    assert identity.id == f"{UDID}:maria@example.org"
    assert identity.parent_id == UDID
    assert identity.is_user_channel is True


def test_shared_ipad_user_without_user_id_is_still_a_user_channel() -> None:
    identity = identity_from({"UDID": UDID, "UserShortName": "maria@example.org"})
    assert identity.type is EnrollmentType.SHARED_IPAD_USER


def test_shared_ipad_user_id_without_short_name_is_refused() -> None:
    with pytest.raises(ProtocolError, match="without UserShortName"):
        identity_from({"UDID": UDID, "UserID": SHARED_IPAD_USER_ID}, where="TokenUpdate")


def test_user_enrollment_device_is_keyed_by_enrollment_id() -> None:
    identity = identity_from({"EnrollmentID": "ENR-1"})
    assert identity.type is EnrollmentType.USER_ENROLLMENT_DEVICE
    assert identity.id == "ENR-1"
    assert identity.is_user_channel is False


def test_user_enrollment_user() -> None:
    identity = identity_from({"EnrollmentID": "ENR-1", "EnrollmentUserID": "EUSER-9"})
    assert identity.type is EnrollmentType.USER_ENROLLMENT_USER
    assert identity.user_id == "EUSER-9"
    assert identity.id == "ENR-1:EUSER-9"
    assert identity.parent_id == "ENR-1"
    assert identity.is_user_channel is True


def test_neither_udid_nor_enrollment_id_is_refused() -> None:
    with pytest.raises(ProtocolError) as info:
        identity_from({"UserID": USER_ID}, where="TokenUpdate")
    assert str(info.value) == "TokenUpdate: neither UDID nor EnrollmentID is present"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"UDID": 12}, "key 'UDID' must be string, got integer"),
        ({"UDID": ""}, "key 'UDID' must not be empty"),
        ({"EnrollmentID": b"x"}, "key 'EnrollmentID' must be string, got data"),
        ({"UDID": UDID, "UserID": True}, "key 'UserID' must be string, got boolean"),
        ({"UDID": UDID, "UserShortName": ""}, "key 'UserShortName' must not be empty"),
    ],
)
def test_ids_must_be_non_empty_strings(message: dict[str, object], expected: str) -> None:
    with pytest.raises(ProtocolError) as info:
        identity_from(message, where="CheckOut")
    assert str(info.value) == f"CheckOut: {expected}"


def test_identities_are_values_usable_as_keys() -> None:
    first = identity_from({"UDID": UDID, "UserID": USER_ID})
    second = EnrollmentIdentity(EnrollmentType.USER, UDID, USER_ID)
    assert {first: "seen"}[second] == "seen"


@pytest.mark.parametrize(
    ("kind", "user_id"),
    [
        (EnrollmentType.DEVICE, "someone"),
        (EnrollmentType.USER_ENROLLMENT_DEVICE, "someone"),
        (EnrollmentType.USER, None),
        (EnrollmentType.SHARED_IPAD_USER, ""),
    ],
)
def test_inconsistent_identity_cannot_be_built(kind: EnrollmentType, user_id: str | None) -> None:
    with pytest.raises(ValueError, match="user_id"):
        EnrollmentIdentity(kind, UDID, user_id)


def test_identity_needs_a_device_id() -> None:
    with pytest.raises(ValueError, match="device_id"):
        EnrollmentIdentity(EnrollmentType.DEVICE, "")
