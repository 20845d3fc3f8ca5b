"""Certificate-to-enrollment binding, as a wrapper around the core service.

The HTTP layer has already proved the request was signed by a certificate from a trusted CA.
This layer proves that certificate speaks for *this* device: at Authenticate the certificate is
bound to the device (UDID or EnrollmentID); every later request for that device must present a
bound certificate. A certificate bound to one device is never accepted for another, so a
device's stolen identity cannot be replayed to take over or impersonate a different device.
"""

from __future__ import annotations

from mdmserver.logs import get_logger
from mdmserver.protocol.checkin import Authenticate, CheckinMessage
from mdmserver.protocol.enrollment_id import EnrollmentIdentity
from mdmserver.protocol.results import CommandResult
from mdmserver.service.base import MDMService, Reply
from mdmserver.service.context import DeviceRequest
from mdmserver.service.errors import DeviceForbidden
from mdmserver.storage.base import Storage

log = get_logger("certauth")


class CertAuth:
    def __init__(self, inner: MDMService, storage: Storage) -> None:
        self.inner = inner
        self.storage = storage

    def checkin(self, request: DeviceRequest, message: CheckinMessage) -> Reply:
        if isinstance(message, Authenticate):
            return self._authenticate(request, message)
        self._require_binding(request, message.identity)
        return self.inner.checkin(request, message)

    def connect(self, request: DeviceRequest, result: CommandResult) -> Reply:
        self._require_binding(request, result.identity)
        return self.inner.connect(request, result)

    def _authenticate(self, request: DeviceRequest, message: Authenticate) -> Reply:
        device_id = message.identity.device_id
        owner = self.storage.device_for_certificate(request.fingerprint)
        if owner is not None and owner != device_id:
            self._refuse(request, message.identity, f"certificate is bound to device {owner}")
        reply = self.inner.checkin(request, message)
        # A fresh Authenticate is a (re-)enrollment: the new identity replaces the old one.
        self.storage.bind_certificate(
            device_id, request.fingerprint, request.not_after, replace=True
        )
        return reply

    def _require_binding(self, request: DeviceRequest, identity: EnrollmentIdentity) -> None:
        if not self.storage.is_bound(identity.device_id, request.fingerprint):
            self._refuse(request, identity, "certificate is not bound to this device")

    @staticmethod
    def _refuse(request: DeviceRequest, identity: EnrollmentIdentity, reason: str) -> None:
        log.warning(
            "certificate_refused",
            extra={
                "fields": {
                    "enrollment_id": identity.id,
                    "cert": request.fingerprint,
                    "reason": reason,
                }
            },
        )
        raise DeviceForbidden(f"identity certificate refused: {reason}")
