"""Over-the-air enrollment, phase 2: a device posts its attributes signed by its Apple identity.

The answer is the enrollment profile whose one-time SCEP challenge is bound to the UDID the
device's Apple identity vouched for, so the identity our CA then issues speaks for that UDID
only (mdmserver.service.certauth refuses it for any other device).

Who may cause this: only a device holding an identity that chains to the configured Apple
device CAs, presenting an unspent profile-service challenge of a usable token. Everything is
checked before anything is stored; a refusal stores nothing (the challenge stays usable for the
genuine device). What Apple's signature proves is that a genuine device produced the plist; the
one-time challenge binds it to this enrollment attempt and token.
"""

from __future__ import annotations

from datetime import datetime

from mdmserver.crypto.apple_chain import AppleDeviceCAs
from mdmserver.crypto.cms_verify import verify_attached
from mdmserver.crypto.errors import SignatureError, UntrustedCertificate
from mdmserver.enrollment.profile_service import parse_device_attributes
from mdmserver.enrollment.service import EnrollmentProfiles
from mdmserver.logs import get_logger
from mdmserver.protocol.errors import ProtocolError
from mdmserver.service.errors import BadDeviceRequest, DeviceForbidden

log = get_logger("enrollment")

ATTRIBUTES_CONTENT_TYPE = "application/pkcs7-signature"
_PLIST_STARTS = (b"<?xml", b"<plist", b"bplist", b"\xef\xbb\xbf")


class OverTheAir:
    def __init__(self, profiles: EnrollmentProfiles, apple_cas: AppleDeviceCAs) -> None:
        self.profiles = profiles
        self.apple_cas = apple_cas

    def enroll(self, body: bytes, *, now: datetime | None = None) -> bytes:
        """The enrollment profile for a verified device, or a 400/403 with nothing stored."""
        if not body:
            raise BadDeviceRequest("empty body: expected the device attributes in a CMS signature")
        if body.lstrip().startswith(_PLIST_STARTS):
            raise BadDeviceRequest(
                "the device attributes are not signed: expected a CMS SignedData "
                f"({ATTRIBUTES_CONTENT_TYPE}) holding them"
            )
        try:
            signed = verify_attached(body)
        except SignatureError as exc:
            self._refused("bad_signature", str(exc))
            raise DeviceForbidden(f"device attributes refused: {exc}") from None
        try:
            self.apple_cas.verify(signed.signer, signed.certificates, at=now)
        except UntrustedCertificate as exc:
            self._refused("untrusted_signer", str(exc))
            raise DeviceForbidden(
                f"device attributes refused: not signed by an Apple device identity ({exc})"
            ) from None
        try:
            challenge, device = parse_device_attributes(signed.content)
        except ProtocolError as exc:
            self._refused("bad_attributes", str(exc))
            raise BadDeviceRequest(str(exc)) from None
        return self.profiles.for_attested_device(challenge, device)

    @staticmethod
    def _refused(kind: str, reason: str) -> None:
        """A refused signature or signer is worth a warning: a genuine device never sends one."""
        level = log.info if kind == "bad_attributes" else log.warning
        level("ota_attributes_refused", extra={"fields": {"kind": kind, "reason": reason}})
