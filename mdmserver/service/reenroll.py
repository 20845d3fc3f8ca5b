"""The re-enrollment rule: who may start an enrollment over for a device that is enrolled.

UDIDs and serial numbers are not secrets, and an ordinary enrollment token is handed to every
employee. So an Authenticate naming an enrollment that is active and bound to identity X, made
with a different identity Y, is refused (403, logged as ``reenroll_refused`` with both
fingerprints, nothing stored) unless one of these holds, each of which a real device meets:

- the enrollment ended: CheckOut received, or revoked by an admin (no identity is bound then);
- an EraseDevice for the device was acknowledged since X was bound (a wiped device enrolls
  again with a new identity);
- X expired, or was revoked;
- Y was issued by our CA for this very device (an attested enrollment, or a renewal of X);
- an admin allowed it (``devices allow-reenroll``): once, within a window.

The enrollment token or its tags change nothing. ``reenroll = "open"`` turns the rule off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from mdmserver.logs import get_logger
from mdmserver.service.errors import DeviceForbidden
from mdmserver.storage.sql.enrollment_store import CurrentBinding, IssuedCert

log = get_logger("reenroll")


class ReenrollStore(Protocol):
    """What the rule reads and consumes (mdmserver.storage.sql.enrollment_store)."""

    def current_binding(self, device_id: str) -> CurrentBinding | None: ...
    def use_allowance(self, device_id: str) -> datetime | None: ...
    def allow_reenroll(self, device_id: str, until: datetime) -> bool: ...


@dataclass(frozen=True, slots=True)
class Admission:
    """Why an Authenticate may proceed; `allowance` is the admin allowance it used up."""

    reason: str
    allowance: datetime | None = None


class ReenrollRule:
    def __init__(self, store: ReenrollStore, *, strict: bool = True) -> None:
        self.store = store
        self.strict = strict

    def admit(self, device_id: str, fingerprint: str, issued: IssuedCert | None) -> Admission:
        """Admit an Authenticate for `device_id` made with the identity `fingerprint` (our
        record of it in `issued`, if ours), or raise DeviceForbidden."""
        current = self.store.current_binding(device_id)
        if current is None:
            return Admission("no identity bound")
        if current.fingerprint == fingerprint:
            return Admission("same identity")
        if not self.strict:
            return self._allowed(current, fingerprint, "reenroll is open")
        reason = self._exception(current, issued, datetime.now(UTC))
        if reason is not None:
            return self._allowed(current, fingerprint, reason)
        allowance = self.store.use_allowance(device_id)
        if allowance is not None:
            admission = self._allowed(current, fingerprint, "allowed by an admin")
            return Admission(admission.reason, allowance)
        log.warning(
            "reenroll_refused",
            extra={
                "fields": {
                    "device_id": device_id,
                    "bound_cert": current.fingerprint,
                    "presented_cert": fingerprint,
                }
            },
        )
        raise DeviceForbidden(
            "identity certificate refused: the device is enrolled with another identity"
            " (re-enrollment needs a CheckOut, an acknowledged EraseDevice, an expired or"
            " revoked identity, or an admin's allow-reenroll)"
        )

    def give_back(self, device_id: str, admission: Admission) -> None:
        """The Authenticate failed after all: restore the allowance it consumed."""
        if admission.allowance is not None:
            self.store.allow_reenroll(device_id, admission.allowance)

    @staticmethod
    def _exception(current: CurrentBinding, issued: IssuedCert | None, now: datetime) -> str | None:
        if not current.enrolled_with_it():
            return "enrollment not active"
        if current.erase_acknowledged:
            return "EraseDevice acknowledged"
        if current.revoked:
            return "bound identity revoked"
        if current.not_after is not None and current.not_after <= now:
            return "bound identity expired"
        if issued is not None and issued.device_id == current.device_id and not issued.revoked:
            return "identity issued for this device"
        return None

    @staticmethod
    def _allowed(current: CurrentBinding, fingerprint: str, reason: str) -> Admission:
        log.info(
            "reenroll_allowed",
            extra={
                "fields": {
                    "device_id": current.device_id,
                    "bound_cert": current.fingerprint,
                    "presented_cert": fingerprint,
                    "reason": reason,
                }
            },
        )
        return Admission(reason)
