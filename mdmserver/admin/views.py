"""The JSON shapes the API documents and the CLI prints with --json (times ISO 8601, UTC)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mdmserver.storage.base import QueueItem
from mdmserver.storage.sql.enrollment_store import TokenInfo
from mdmserver.storage.sql.inventory_queries import DeviceDetail, DeviceRow, EnrollmentRow


def when(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def identity_kind(udid_attested: bool) -> str:
    """How the device's identity is tied to its UDID: "attested" (issued over the air for the
    UDID Apple's device identity vouched for) or "token" (the device's own claim)."""
    return "attested" if udid_attested else "token"


def device(row: DeviceRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "serial_number": row.serial_number,
        "platform": row.platform,
        "product_name": row.product_name,
        "model": row.model,
        "model_name": row.model_name,
        "os_version": row.os_version,
        "build_version": row.build_version,
        "device_name": row.device_name,
        "enrolled": row.enrolled,
        "user_enrollment": row.user_enrollment,
        "tags": list(row.tags),
        "identity": identity_kind(row.udid_attested),
        "created_at": when(row.created_at),
        "last_seen_at": when(row.last_seen_at),
    }


def enrollment(row: EnrollmentRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "type": row.type,
        "channel": "device" if row.type in ("device", "user_enrollment_device") else "user",
        "status": row.status,
        "user_id": row.user_id,
        "user_short_name": row.user_short_name,
        "push_token_present": row.push_token_present,
        "token_stale": row.token_stale,
        "unlock_token_present": row.unlock_token_present,
        "last_seen_at": when(row.last_seen_at),
    }


def device_detail(detail: DeviceDetail) -> dict[str, Any]:
    row = detail.device
    return {
        **device(row),
        "enrollments": [enrollment(e) for e in detail.enrollments],
        "identity_expires_at": when(detail.identity_expires_at),
        "inventory": {
            "source": "Authenticate",
            "model": row.model,
            "model_name": row.model_name,
            "product_name": row.product_name,
            "os_version": row.os_version,
            "build_version": row.build_version,
            "serial_number": row.serial_number,
            "device_name": row.device_name,
        },
    }


def queue_item(item: QueueItem, device_id: str | None = None) -> dict[str, Any]:
    out = {
        "command_uuid": item.command_uuid,
        "request_type": item.request_type,
        "enrollment_id": item.enrollment_id,
        "status": item.status.value,
        "priority": item.priority,
        "created_at": when(item.created_at),
        "sent_at": when(item.sent_at),
        "answered_at": when(item.answered_at),
        "expires_at": when(item.expires_at),
    }
    return {"device_id": device_id, **out} if device_id is not None else out


def token(info: TokenInfo, now: datetime) -> dict[str, Any]:
    return {
        "id": info.id,
        "prefix": info.prefix,
        "max_uses": info.max_uses,
        "uses": info.uses,
        "expires_at": when(info.expires_at),
        "revoked": info.revoked,
        "state": info.problem(now) or "active",
        "tags": list(info.tags),
        "ota": info.ota,
        "require_ota": info.require_ota,
        "created_at": when(info.created_at),
    }


# The parts of the inventory as the API shows them: each part names the facts it holds and
# the inventory commands whose answers fill it (their last answer time is "reported_at").
INVENTORY_PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "hardware": (
        ("model", "model_name", "product_name", "serial_number", "device_name"),
        ("DeviceInformation",),
    ),
    "os": (("platform", "os_version", "build_version"), ("DeviceInformation",)),
    "battery": (("battery_level",), ("DeviceInformation",)),
    "storage": (("storage_capacity_gb", "storage_available_gb"), ("DeviceInformation",)),
    "supervision": (("supervised", "activation_lock"), ("DeviceInformation", "SecurityInfo")),
    "passcode": (("passcode_present", "passcode_compliant"), ("SecurityInfo",)),
    "encryption": (
        ("hardware_encryption_caps", "data_protection", "filevault"),
        ("SecurityInfo",),
    ),
    "firewall": (("firewall",), ("SecurityInfo",)),
    "sip": (("sip",), ("SecurityInfo",)),
    "apps": (
        ("installed_apps", "managed_apps"),
        ("InstalledApplicationList", "ManagedApplicationList"),
    ),
    "profiles": (("profiles",), ("ProfileList",)),
    "certificates": (("certificates",), ("CertificateList",)),
}


def inventory(
    device_id: str, facts: dict[str, Any] | None, answered: dict[str, datetime]
) -> dict[str, Any]:
    """The normalised inventory of one device, part by part, each with when it was reported."""
    facts = facts or {}
    parts: dict[str, Any] = {}
    for part, (names, sources) in INVENTORY_PARTS.items():
        times = [answered[s] for s in sources if s in answered]
        parts[part] = {
            **{name: facts.get(name) for name in names},
            "reported_at": when(max(times)) if times else None,
        }
    return {
        "device_id": device_id,
        **parts,
        "requested_at": when(facts.get("requested_at")),
        "updated_at": when(facts.get("updated_at")),
    }
