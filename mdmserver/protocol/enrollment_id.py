"""Who is speaking: the device channel or one of the user channels beside it.

Every check-in and command result names its sender with some mix of UDID,
EnrollmentID, UserID, EnrollmentUserID and UserShortName; this module turns
that mix into one stable key per channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mdmserver.bounds import CHANNEL_ID, USER_CHANNEL_ID, BoundError, TextRule
from mdmserver.protocol.errors import ProtocolError
from mdmserver.protocol.plist import type_name

__all__ = ["SHARED_IPAD_USER_ID", "EnrollmentIdentity", "EnrollmentType", "identity_from"]

# Shared iPad user channels all carry this UserID; UserShortName tells them apart.
SHARED_IPAD_USER_ID = "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"

# Each identifying key with its rule (printable, bounded, no ':' or '/': the channel's storage
# key joins device and user id with ':', and the admin API puts device ids in URL paths).
# UserShortName names a user on any channel; only on a Shared iPad is it also the user id.
_ID_KEYS: dict[str, TextRule] = {
    "UDID": CHANNEL_ID,
    "EnrollmentID": CHANNEL_ID,
    "UserID": USER_CHANNEL_ID,
    "EnrollmentUserID": USER_CHANNEL_ID,
}


class EnrollmentType(StrEnum):
    """The kind of channel a message arrived on."""

    DEVICE = "device"
    USER = "user"  # macOS user channel, keyed by UserID
    USER_ENROLLMENT_DEVICE = "user_enrollment_device"
    USER_ENROLLMENT_USER = "user_enrollment_user"
    SHARED_IPAD_USER = "shared_ipad_user"


_DEVICE_TYPES = frozenset({EnrollmentType.DEVICE, EnrollmentType.USER_ENROLLMENT_DEVICE})


@dataclass(frozen=True, slots=True)
class EnrollmentIdentity:
    """One channel: `device_id` is the UDID (EnrollmentID under User Enrollment).

    `user_id` is the UserID on macOS, the UserShortName on Shared iPad, the
    EnrollmentUserID under User Enrollment, and None on device channels.
    """

    type: EnrollmentType
    device_id: str
    user_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.device_id, str) or not self.device_id:
            raise ValueError("EnrollmentIdentity.device_id must be a non-empty string")
        if self.type in _DEVICE_TYPES:
            if self.user_id is not None:
                raise ValueError(f"a {self.type} identity has no user_id")
        elif not isinstance(self.user_id, str) or not self.user_id:
            raise ValueError(f"a {self.type} identity needs a non-empty user_id")

    @property
    def is_user_channel(self) -> bool:
        """True for the user channels, which share the device's enrollment."""
        return self.type not in _DEVICE_TYPES

    @property
    def id(self) -> str:
        """The stable storage key; user channels are scoped by their device."""
        if self.user_id is None:
            return self.device_id
        return f"{self.device_id}:{self.user_id}"

    @property
    def parent_id(self) -> str:
        """The id of the device channel this channel belongs to (itself for a device)."""
        return self.device_id


def identity_from(message: Mapping[str, Any], *, where: str = "message") -> EnrollmentIdentity:
    """Work out the sending channel from a check-in or result dictionary.

    `where` names the message in error texts (e.g. "TokenUpdate").
    """
    ids = {key: _id_value(message, key, rule, where) for key, rule in _ID_KEYS.items()}
    udid, enrollment_id, user_id = ids["UDID"], ids["EnrollmentID"], ids["UserID"]
    short_name = _id_value(message, "UserShortName", None, where)
    if udid is not None:
        if user_id is not None and user_id != SHARED_IPAD_USER_ID:
            return EnrollmentIdentity(EnrollmentType.USER, udid, user_id)
        if short_name is not None:
            _checked(USER_CHANNEL_ID, short_name, "UserShortName", where)
            return EnrollmentIdentity(EnrollmentType.SHARED_IPAD_USER, udid, short_name)
        if user_id is not None:
            raise ProtocolError(
                f"{where}: Shared iPad user channel (UserID {SHARED_IPAD_USER_ID}) "
                "without UserShortName"
            )
        return EnrollmentIdentity(EnrollmentType.DEVICE, udid)
    if enrollment_id is not None:
        enrollment_user_id = ids["EnrollmentUserID"]
        if enrollment_user_id is not None:
            return EnrollmentIdentity(
                EnrollmentType.USER_ENROLLMENT_USER, enrollment_id, enrollment_user_id
            )
        return EnrollmentIdentity(EnrollmentType.USER_ENROLLMENT_DEVICE, enrollment_id)
    raise ProtocolError(f"{where}: neither UDID nor EnrollmentID is present")


def _id_value(
    message: Mapping[str, Any], key: str, rule: TextRule | None, where: str
) -> str | None:
    value = message.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{where}: key {key!r} must be string, got {type_name(type(value))}")
    if not value:
        raise ProtocolError(f"{where}: key {key!r} must not be empty")
    if rule is not None:
        _checked(rule, value, key, where)
    return value


def _checked(rule: TextRule, value: str, key: str, where: str) -> None:
    try:
        rule.check(value, f"{where}: key {key!r}")
    except BoundError as exc:
        raise ProtocolError(str(exc)) from None
