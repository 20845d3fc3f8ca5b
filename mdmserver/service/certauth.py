"""Certificate-to-enrollment binding, as a wrapper around the core service.

The HTTP layer has already proved the request was signed by a certificate from a trusted CA.
This layer proves that certificate speaks for *this* device: at Authenticate the certificate is
bound to the device (UDID or EnrollmentID); every later request for that device must present a
bound certificate. A certificate bound to one device is never accepted for another, so a
device's stolen identity cannot be replayed to take over or impersonate a different device.

With the server's own CA (``identities``), certificates it issued are also checked here: one
our SCEP server did not record as a device identity is never bound (the same CA signs the
server's TLS and profile-signing certificates), a revoked one is refused (revoking also drops
its binding, so the hot path needs no extra lookup), one issued for a device speaks only for
that device, and a renewed identity issued for a device is bound to it on first use in place of
the old one, which is then revoked as
superseded (refused everywhere, listed in the CRL).

An Authenticate with a new identity for a device enrolled with another one must also pass the
re-enrollment rule (:mod:`mdmserver.service.reenroll`) before anything is stored.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NoReturn, Protocol

from mdmserver.logs import get_logger
from mdmserver.protocol.checkin import Authenticate, CheckinMessage
from mdmserver.protocol.enrollment_id import EnrollmentIdentity
from mdmserver.protocol.results import CommandResult
from mdmserver.service.base import MDMService, Reply
from mdmserver.service.context import DeviceRequest
from mdmserver.service.errors import DeviceForbidden
from mdmserver.service.reenroll import ReenrollRule
from mdmserver.storage.ports import CertificateBindingPort
from mdmserver.storage.sql.enrollment_store import ACCESS, OTA, IssuedCert

log = get_logger("certauth")

# An access identity (profiles/access-identity.toml) lives in the device's keychain for apps
# and browsers: it opens doors at an access proxy, never speaks for the device to MDM.
ACCESS_REFUSAL = "an access identity is not an MDM identity"


class IssuedIdentities(Protocol):
    """The certificates our CA issued (mdmserver.storage.sql.enrollment_store)."""

    def issued(self, fingerprint: str) -> IssuedCert | None: ...
    def claim(self, device_id: str, fingerprint: str) -> None: ...
    def is_newest(self, device_id: str, fingerprint: str) -> bool: ...
    def set_udid_attested(self, device_id: str, attested: bool) -> None: ...
    def supersede(self, device_id: str, fingerprint: str) -> list[str]: ...
    def is_revoked_elsewhere(self, fingerprint: str) -> bool: ...


class CertAuth:
    def __init__(
        self,
        inner: MDMService,
        storage: CertificateBindingPort,
        identities: IssuedIdentities | None = None,
        reenroll: ReenrollRule | None = None,
    ) -> None:
        self.inner = inner
        self.storage = storage
        self.identities = identities
        self.reenroll = reenroll

    def checkin(self, request: DeviceRequest, message: CheckinMessage) -> Reply:
        if isinstance(message, Authenticate):
            return self._authenticate(request, message)
        return self.inner.checkin(self._require_binding(request, message.identity), message)

    def connect(self, request: DeviceRequest, result: CommandResult) -> Reply:
        return self.inner.connect(self._require_binding(request, result.identity), result)

    def _authenticate(self, request: DeviceRequest, message: Authenticate) -> Reply:
        device_id = message.identity.device_id
        owner = self.storage.device_for_certificate(request.fingerprint)
        if owner is not None and owner != device_id:
            self._refuse(request, message.identity, f"certificate is bound to device {owner}")
        issued = self._issued(request)
        if request.from_own_ca and issued is None:
            # Our CA also signed the server's TLS and profile-signing certificates.
            self._refuse(
                request,
                message.identity,
                "certificate was not issued by this server's SCEP service as a device identity",
            )
        if issued is not None:
            if issued.revoked:
                self._refuse(request, message.identity, "certificate is revoked")
            if issued.method == ACCESS:
                self._refuse(request, message.identity, ACCESS_REFUSAL)
            if issued.device_id is not None and issued.device_id != device_id:
                self._refuse(request, message.identity, "certificate was issued to another device")
        elif self._revoked_elsewhere(request):
            self._refuse(request, message.identity, "certificate is revoked")
        admission = None
        if self.reenroll is not None:
            admission = self.reenroll.admit(device_id, request.fingerprint, issued)
        try:
            reply = self.inner.checkin(request, message)
        except Exception:
            if admission is not None and self.reenroll is not None:
                self.reenroll.give_back(device_id, admission)
            raise
        # A fresh Authenticate is a (re-)enrollment: the new identity replaces the old one.
        self.storage.bind_certificate(
            device_id, request.fingerprint, request.not_after, replace=True
        )
        if self.identities is not None:
            if issued is not None:
                self.identities.claim(device_id, request.fingerprint)
            self.identities.supersede(device_id, request.fingerprint)
            attested = udid_attested(issued, device_id)
            if attested is not None:
                self.identities.set_udid_attested(device_id, attested)
        return reply

    def _require_binding(
        self, request: DeviceRequest, identity: EnrollmentIdentity
    ) -> DeviceRequest:
        """Refuse unless the certificate is bound to the device. The same query reads the
        enrollment's status, which travels on with the request (the loop needs it too)."""
        access = self.storage.access(identity.device_id, identity.id, request.fingerprint)
        request = replace(request, enrollment_status=access.status, status_known=True)
        if access.bound:
            return request
        # Rare path: a renewed identity's first request, or a refusal worth explaining.
        issued = self._issued(request)
        if (issued is not None and issued.revoked) or (
            issued is None and self._revoked_elsewhere(request)
        ):
            self._refuse(request, identity, "certificate is revoked")
        if issued is not None and issued.method == ACCESS:
            self._refuse(request, identity, ACCESS_REFUSAL)
        if (
            issued is not None
            and self.identities is not None
            and issued.device_id == identity.device_id
            and self.identities.is_newest(identity.device_id, request.fingerprint)
        ):
            # Only the newest identity issued for the device: a superseded one stays refused.
            self.storage.bind_certificate(
                identity.device_id, request.fingerprint, request.not_after, replace=True
            )
            self.identities.supersede(identity.device_id, request.fingerprint)
            log.info(
                "identity_renewed",
                extra={"fields": {"device_id": identity.device_id, "cert": request.fingerprint}},
            )
            return request
        self._refuse(request, identity, "certificate is not bound to this device")

    def _issued(self, request: DeviceRequest) -> IssuedCert | None:
        return self.identities.issued(request.fingerprint) if self.identities else None

    def _revoked_elsewhere(self, request: DeviceRequest) -> bool:
        """An identity from another CA that an admin revoked."""
        return bool(self.identities and self.identities.is_revoked_elsewhere(request.fingerprint))

    @staticmethod
    def _refuse(request: DeviceRequest, identity: EnrollmentIdentity, reason: str) -> NoReturn:
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


RENEWAL_METHODS = ("renew", "renewalreq")


def udid_attested(issued: IssuedCert | None, device_id: str) -> bool | None:
    """Whether an identity Authenticating for `device_id` proves its UDID was attested: issued
    over the air for this very device (True); a renewal issued for it keeps what the device had
    (None: unchanged); any other identity, ours through a token or another CA's, does not."""
    if issued is None or issued.device_id != device_id:
        return False
    if issued.method == OTA:
        return True
    return None if issued.method in RENEWAL_METHODS else False
