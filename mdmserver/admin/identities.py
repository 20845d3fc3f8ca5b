"""A device's identity, as administrators control it: allow one re-enrollment, or revoke.

Both are audited like every other change. ``allow_reenroll`` lets one new identity take over
the device's active enrollment within a window (the re-enrollment rule consumes it);
``revoke`` revokes every identity of the device, ends its enrollment and makes the trust
answer ``managed: false`` at once. Commands for the device stay queued (security commands
survive a new enrollment, see mdmserver.storage.sql).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mdmserver.admin.audit import Audit
from mdmserver.admin.errors import BadRequest, NotFound
from mdmserver.enrollment.onetime import parse_duration
from mdmserver.logs import get_logger
from mdmserver.storage.ports import EnrollmentPort, InventoryQueryPort

log = get_logger("identities")

DEFAULT_WINDOW = timedelta(hours=24)
MAX_WINDOW = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Allowance:
    device_id: str
    allowed_until: datetime


@dataclass(frozen=True, slots=True)
class Revocation:
    device_id: str
    revoked_serials: list[str]


def parse_window(text: str | None) -> timedelta:
    """The allowance window ('24h', '30m', '2d'); at most MAX_WINDOW."""
    if text is None or text == "":
        return DEFAULT_WINDOW
    try:
        window = parse_duration(text)
    except ValueError as exc:
        raise BadRequest(f"for: {exc}") from None
    if not timedelta(0) < window <= MAX_WINDOW:
        raise BadRequest(f"for: must be more than 0 and at most {MAX_WINDOW.days}d, got {text!r}")
    return window


class DeviceIdentities:
    def __init__(self, inventory: InventoryQueryPort, store: EnrollmentPort, audit: Audit) -> None:
        self.inventory = inventory
        self.store = store
        self.audit = audit

    def _device_id(self, ident: str) -> str:
        device = self.inventory.find_device(ident)
        if device is None:
            raise NotFound(f"unknown device {ident!r} (no device has this UDID or serial number)")
        return device.id

    def allow_reenroll(self, ident: str, window: timedelta, *, actor: str) -> Allowance:
        with self.audit.record(actor, "device.allow_reenroll", [ident]) as entry:
            device_id = self._device_id(ident)
            entry.targets = [device_id]
            until = datetime.now(UTC) + window
            if not self.store.allow_reenroll(device_id, until):
                raise NotFound(f"unknown device {ident!r}")
            entry.detail["allowed_until"] = until.isoformat(timespec="seconds")
        return Allowance(device_id, until)

    def revoke(self, ident: str, *, actor: str) -> Revocation:
        with self.audit.record(actor, "device.revoke", [ident]) as entry:
            device_id = self._device_id(ident)
            entry.targets = [device_id]
            serials = self.store.revoke_device(device_id)
            entry.detail["revoked"] = ",".join(serials)
        log.warning(
            "device_revoked",
            extra={"fields": {"device_id": device_id, "serials": serials, "actor": actor}},
        )
        return Revocation(device_id, serials)
