"""The records that cross the storage ports (see :mod:`mdmserver.storage.ports`).

Plain frozen dataclasses and enums: the SQL stores and the in-memory one build them, the
service layer reads them, and neither side needs to know which backend produced them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from mdmserver.protocol.enrollment_id import EnrollmentIdentity


class UnknownEnrollment(LookupError):
    """The enrollment (or its device) was never authenticated, or has checked out."""


class AmbiguousSerial(LookupError):
    """A serial number names more than one enrolled device. Serial numbers are not secrets and
    not identities (a device reports its own), so a lookup by serial that matches several
    active devices picks none of them; ``candidates`` maps each such serial to its devices."""

    def __init__(self, candidates: dict[str, list[str]]) -> None:
        self.candidates = candidates
        shown = "; ".join(
            f"serial number {serial!r} matches {len(ids)} enrolled devices ({', '.join(ids)})"
            for serial, ids in candidates.items()
        )
        super().__init__(f"{shown}: name the device by its UDID")


_Row = TypeVar("_Row", bound=Any)


def pick_by_serial(serial: str, rows: Sequence[_Row]) -> _Row | None:
    """The one device a serial number names among `rows` (newest first, each with ``id`` and
    ``enrolled``): the single enrolled one, else the newest when none is enrolled. Several
    enrolled devices raise AmbiguousSerial rather than let the newest claim win."""
    active = [row for row in rows if row.enrolled]
    if len(active) > 1:
        raise AmbiguousSerial({serial: sorted(row.id for row in active)})
    if active:
        return active[0]
    return rows[0] if rows else None


class QueueStatus(StrEnum):
    """Where one queued command stands for one enrollment."""

    QUEUED = "queued"
    SENT = "sent"
    NOTNOW = "notnow"
    ACKNOWLEDGED = "acknowledged"
    ERROR = "error"
    COMMAND_FORMAT_ERROR = "commandformaterror"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


# Statuses a device reported as its final word on a command.
ANSWERED = (QueueStatus.ACKNOWLEDGED, QueueStatus.ERROR, QueueStatus.COMMAND_FORMAT_ERROR)
# Statuses still waiting to be delivered (or re-delivered).
PENDING = (QueueStatus.QUEUED, QueueStatus.SENT, QueueStatus.NOTNOW)


class ResultOutcome(StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    NOT_SENT = "not_sent"


@dataclass(frozen=True, slots=True)
class Recorded:
    """What became of a device's result, and (when recorded) which command it answered."""

    outcome: ResultOutcome
    request_type: str | None = None


class EnrollmentStatus(StrEnum):
    PENDING = "pending"  # authenticated, waiting for its first TokenUpdate
    ACTIVE = "active"
    CHECKED_OUT = "checked_out"


@dataclass(frozen=True, slots=True)
class Access:
    """Whether a certificate is bound to a device, and where that enrollment stands."""

    bound: bool
    status: EnrollmentStatus | None


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """What an Authenticate tells us about a device."""

    device_id: str
    user_enrollment: bool
    topic: str
    serial_number: str | None = None
    model: str | None = None
    model_name: str | None = None
    product_name: str | None = None
    os_version: str | None = None
    build_version: str | None = None
    device_name: str | None = None
    imei: str | None = None
    meid: str | None = None


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What a TokenUpdate tells us: how to wake this enrollment."""

    identity: EnrollmentIdentity
    topic: str
    push_token_hex: str
    push_magic: str
    unlock_token: bytes | None = None
    awaiting_configuration: bool | None = None  # None: the key was absent, keep what we had
    user_short_name: str | None = None
    user_long_name: str | None = None


@dataclass(frozen=True, slots=True)
class NextCommand:
    command_uuid: str
    request_type: str
    plist: bytes


@dataclass(frozen=True, slots=True)
class QueueItem:
    enrollment_id: str
    command_uuid: str
    request_type: str
    status: QueueStatus
    priority: int
    created_at: datetime
    sent_at: datetime | None
    answered_at: datetime | None
    expires_at: datetime | None
    result: bytes | None


@dataclass(frozen=True, slots=True)
class EnrollmentInfo:
    id: str
    device_id: str
    type: str
    status: EnrollmentStatus
    topic: str | None
    push_token_hex: str | None
    push_magic: str | None
    token_stale: bool
    awaiting_configuration: bool
    unlock_token: bytes | None
    user_id: str | None
    user_short_name: str | None
    last_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class Seen:
    """One enrollment (and its device) seen by the server at ``at``."""

    enrollment_id: str
    device_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CurrentBinding:
    """The identity an enrollment is bound to, and every fact the re-enrollment rule weighs
    (read in one transaction): may a *different* identity take this enrollment over?"""

    device_id: str
    fingerprint: str
    not_after: datetime | None
    bound_at: datetime
    status: str | None  # the device channel's enrollment status (None: no enrollment row)
    token_updated_at: datetime | None
    authenticated_at: datetime | None  # the device's latest Authenticate
    revoked: bool  # the bound identity is one we issued, and it is revoked
    erase_acknowledged: bool  # an EraseDevice was acknowledged since it was bound
    allowed_until: datetime | None  # an admin's one-time allowance

    def enrolled_with_it(self) -> bool:
        """The enrollment is active with this identity: active, or pending again because the
        bound identity itself sent Authenticate again after enrolling (a replayed Authenticate
        must not open the door). A device whose first Authenticate was never followed by a
        TokenUpdate may still start over with a new identity: its enrollment never began."""
        if self.status == "active":
            return True
        return (
            self.status == "pending"
            and self.token_updated_at is not None
            and self.authenticated_at is not None
            and self.authenticated_at > self.bound_at
        )
