"""Apple's profile service ("Over-the-Air Profile Delivery and Configuration"), phases 1 and 2.

Phase 1 is a profile with one payload of type ``Profile Service``: the URL the device posts to,
the attributes it should send and a one-time challenge. Phase 2 is what the device posts: a
plist of those attributes and the challenge (inside a CMS signature the service checks). Pure:
no keys, no storage; the caller signs the payload and judges the signature.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from mdmserver.enrollment.profile import EnrollmentSettings
from mdmserver.protocol import plist
from mdmserver.protocol.errors import ProtocolError

PROFILE_SERVICE_PATH = "/mdm/enroll/ota"
PROFILE_SERVICE_TYPE = "Profile Service"
DEVICE_ATTRIBUTES = ("UDID", "SERIAL", "PRODUCT", "VERSION", "IMEI", "MEID", "DEVICE_NAME")
MAX_ATTRIBUTES_BYTES = 16 * 1024  # a real device sends well under 1 KiB
MAX_CHALLENGE_LENGTH = 256
_UDID = re.compile(r"[0-9A-Za-z-]{1,128}")
# Attribute -> (field, the devices column's length), for what the device row keeps.
_FIELDS = {
    "SERIAL": ("serial_number", 64),
    "PRODUCT": ("product_name", 64),
    "VERSION": ("build_version", 32),  # Apple's VERSION is the OS build, such as 21E219
    "DEVICE_NAME": ("device_name", 256),
    "IMEI": ("imei", 32),
    "MEID": ("meid", 32),
}


@dataclass(frozen=True, slots=True)
class DeviceAttributes:
    """What a device's signed profile-service attributes say about it."""

    udid: str
    serial_number: str | None = None
    product_name: str | None = None
    build_version: str | None = None
    device_name: str | None = None
    imei: str | None = None
    meid: str | None = None


def build_profile_service(settings: EnrollmentSettings, challenge: str) -> dict[str, Any]:
    """The phase-1 profile, unsigned; `challenge` is a fresh one-time secret."""
    return {
        "PayloadType": PROFILE_SERVICE_TYPE,
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{settings.identifier}.profile-service",
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadDisplayName": f"MDM enrollment ({settings.host})",
        "PayloadOrganization": settings.organization,
        "PayloadDescription": "Sends this device's identity to the server, which then "
        "installs the device management profile for this device.",
        "PayloadContent": {
            "URL": f"{settings.server_url}{PROFILE_SERVICE_PATH}",
            "DeviceAttributes": list(DEVICE_ATTRIBUTES),
            "Challenge": challenge,
        },
    }


def parse_device_attributes(content: bytes) -> tuple[str, DeviceAttributes]:
    """(challenge, attributes) from the signed plist, or ProtocolError saying what is wrong."""
    where = "device attributes"
    message = plist.loads(content, max_bytes=MAX_ATTRIBUTES_BYTES)
    challenge = plist.typed_value(message, "CHALLENGE", str, where=where, required=True)
    if not challenge or len(challenge) > MAX_CHALLENGE_LENGTH:
        raise ProtocolError(f"{where}: CHALLENGE must be 1 to {MAX_CHALLENGE_LENGTH} characters")
    udid = plist.typed_value(message, "UDID", str, where=where, required=True)
    if not _UDID.fullmatch(udid):
        raise ProtocolError(f"{where}: UDID must be 1 to 128 letters, digits or hyphens")
    values: dict[str, str] = {}
    for key, (name, limit) in _FIELDS.items():
        value = plist.typed_value(message, key, str, where=where)
        if value is None:
            continue
        if len(value) > limit or not value.isprintable():
            raise ProtocolError(f"{where}: {key} must be at most {limit} printable characters")
        values[name] = value
    return challenge, DeviceAttributes(udid=udid, **values)
