"""Per-device values in a profile: ``${device.serial_number}`` and friends.

They are substituted in the built XML at send time, so one stored profile serves every device
and only profiles that use them are signed per device. The profile's PayloadUUID does not
change with them: a device's own values (its serial number) do not make it "out of date".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from xml.sax.saxutils import escape

DEVICE_VARIABLES: dict[str, str] = {
    "udid": "the device id (UDID, or EnrollmentID under User Enrollment)",
    "serial_number": "the serial number reported at Authenticate",
    "device_name": "the device name reported at Authenticate (macOS)",
    "model": "e.g. iPhone, MacBookPro18,3",
    "model_name": "e.g. iPhone, MacBook Pro",
    "product_name": "e.g. iPhone15,2",
    "os_version": "the OS version reported at Authenticate",
    "imei": "IMEI, cellular devices only",
    "meid": "MEID, cellular devices only",
    "access_challenge": "a fresh one-time SCEP challenge for an access identity of the device",
}
_TOKEN = re.compile(rb"\$\{device\.([a-z_]+)\}")


class MissingDeviceValue(ValueError):
    """The profile needs a device value this device has not reported."""


def uses_device_values(content: bytes) -> bool:
    return _TOKEN.search(content) is not None


def names_used(content: bytes) -> set[str]:
    return {m.decode() for m in _TOKEN.findall(content)}


def unknown_names(content: bytes) -> set[str]:
    return names_used(content) - set(DEVICE_VARIABLES)


def fill(content: bytes, device: Mapping[str, str | None]) -> bytes:
    """The content with every ``${device.*}`` replaced by the device's XML-escaped value."""

    def one(match: re.Match[bytes]) -> bytes:
        name = match.group(1).decode()
        value = device.get(name)
        if not value:
            raise MissingDeviceValue(
                f"the profile uses ${{device.{name}}}, unknown for this device"
            )
        return escape(value).encode("utf-8")

    return _TOKEN.sub(one, content)
