"""The enrollment profile: root CA + SCEP identity + MDM payload, checked against Apple's schema.

Pure: the caller supplies the one-time challenge and the keys. Payload identifiers are stable
per server so a renewal profile (same identifiers, new challenge) replaces the enrolled one
in place instead of installing a second MDM profile, which a device would refuse.
"""

from __future__ import annotations

import plistlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mdmserver.catalog.validate import validate_profile
from mdmserver.crypto.ca import PrivateKey
from mdmserver.crypto.cms_sign import sign_profile

PROFILE_CONTENT_TYPE = "application/x-apple-aspen-config"
ACCESS_RIGHTS_ALL = 8191
SERVER_CAPABILITIES = ("com.apple.mdm.per-user-connections", "com.apple.mdm.bootstraptoken")
KEY_USAGE_SIGN_AND_ENCRYPT = 5  # 1 signing | 4 encryption: the identity signs, SCEP encrypts to it


class ProfileSchemaError(RuntimeError):
    """The profile we built breaks Apple's schema: a server bug, never the device's fault."""


@dataclass(frozen=True, slots=True)
class EnrollmentSettings:
    server_url: str  # https://host[:port], no trailing slash
    topic: str
    ca_cert: x509.Certificate
    organization: str = "mdmserver"

    @property
    def host(self) -> str:
        return urlsplit(self.server_url).hostname or "localhost"

    @property
    def identifier(self) -> str:
        return f"mdmserver.enroll.{self.host}"


def _payload(kind: str, identifier: str, name: str, **content: Any) -> dict[str, Any]:
    return {
        "PayloadType": kind,
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadDisplayName": name,
        **content,
    }


def build_profile(settings: EnrollmentSettings, challenge: str) -> dict[str, Any]:
    """The profile dictionary, unsigned; `challenge` is a fresh one-time SCEP challenge."""
    base = settings.identifier
    root = _payload(
        "com.apple.security.root",
        f"{base}.ca",
        "MDM server CA",
        PayloadCertificateFileName="ca.cer",
        PayloadContent=settings.ca_cert.public_bytes(serialization.Encoding.DER),
    )
    scep = _payload(
        "com.apple.security.scep",
        f"{base}.scep",
        "MDM identity",
        PayloadContent={
            "URL": f"{settings.server_url}/scep",
            "Name": settings.organization,
            "Challenge": challenge,
            "Subject": [
                [["O", settings.organization]],
                [["CN", f"MDM identity {uuid.uuid4()}"]],
            ],
            "Keysize": 2048,
            "Key Type": "RSA",
            "Key Usage": KEY_USAGE_SIGN_AND_ENCRYPT,
        },
    )
    mdm = _payload(
        "com.apple.mdm",
        f"{base}.mdm",
        "Device management",
        ServerURL=f"{settings.server_url}/mdm/connect",
        CheckInURL=f"{settings.server_url}/mdm/checkin",
        Topic=settings.topic,
        IdentityCertificateUUID=scep["PayloadUUID"],
        SignMessage=True,
        AccessRights=ACCESS_RIGHTS_ALL,
        CheckOutWhenRemoved=True,
        ServerCapabilities=list(SERVER_CAPABILITIES),
    )
    profile = _payload(
        "Configuration",
        base,
        f"MDM enrollment ({settings.host})",
        PayloadOrganization=settings.organization,
        PayloadDescription="Enrolls this device in device management.",
        PayloadContent=[root, scep, mdm],
    )
    errors = [e for e in validate_profile(profile) if e.severity == "error"]
    if errors:
        raise ProfileSchemaError("; ".join(str(e) for e in errors))
    return profile


def signed_profile(
    profile: dict[str, Any],
    signer_cert: x509.Certificate,
    signer_key: PrivateKey,
    chain: Sequence[x509.Certificate],
) -> bytes:
    """The .mobileconfig bytes: the XML plist inside an attached CMS signature."""
    return sign_profile(plistlib.dumps(profile), signer_cert, signer_key, chain)
