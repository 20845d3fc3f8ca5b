"""Where the storage records and ports used to be declared; kept importable (many modules
import from here). Records: :mod:`mdmserver.storage.records`; ports:
:mod:`mdmserver.storage.ports`."""

from __future__ import annotations

from mdmserver.storage.ports import (
    CertificateBindingPort,
    CheckinPort,
    DevicePorts,
    LastSeenPort,
    QueuePort,
    Storage,
)
from mdmserver.storage.records import (
    ANSWERED,
    PENDING,
    Access,
    AmbiguousSerial,
    DeviceRecord,
    EnrollmentInfo,
    EnrollmentStatus,
    NextCommand,
    QueueItem,
    QueueStatus,
    Recorded,
    ResultOutcome,
    Seen,
    TokenRecord,
    UnknownEnrollment,
    pick_by_serial,
)

__all__ = [
    "ANSWERED",
    "PENDING",
    "Access",
    "AmbiguousSerial",
    "CertificateBindingPort",
    "CheckinPort",
    "DevicePorts",
    "DeviceRecord",
    "EnrollmentInfo",
    "EnrollmentStatus",
    "LastSeenPort",
    "NextCommand",
    "QueueItem",
    "QueuePort",
    "QueueStatus",
    "Recorded",
    "ResultOutcome",
    "Seen",
    "Storage",
    "TokenRecord",
    "UnknownEnrollment",
    "pick_by_serial",
]
