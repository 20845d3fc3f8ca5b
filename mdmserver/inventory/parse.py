"""Normalised facts from each inventory answer.

Each parser takes the whole result dictionary and returns ``{field: value}`` for the fields its
command speaks to. A field the answer does not carry is None ("unknown"), except the few that
two commands report (SIP, supervision): those are left out, so one answer never erases what the
other said. Parsers never raise on device data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from mdmserver.bounds import INVENTORY_TEXT
from mdmserver.inventory.values import as_bool, as_dict, as_float, as_int, as_list, as_text

Facts = dict[str, Any]

# Scalar fields (one column each) and list fields (JSON), in the order the API shows them.
SCALAR_FIELDS = (
    "os_version",
    "build_version",
    "model",
    "model_name",
    "product_name",
    "serial_number",
    "device_name",
    "supervised",
    "activation_lock",
    "storage_capacity_gb",
    "storage_available_gb",
    "battery_level",
    "passcode_present",
    "passcode_compliant",
    "hardware_encryption_caps",
    "data_protection",
    "filevault",
    "sip",
    "firewall",
)
LIST_FIELDS = ("installed_apps", "managed_apps", "ddm_apps", "profiles", "certificates")
FIELDS = SCALAR_FIELDS + LIST_FIELDS
# Reported by more than one command: a missing key leaves the other command's value alone.
SHARED_FIELDS = frozenset({"sip", "supervised"})
MAX_ITEMS = 5000  # a list longer than this is cut (a Mac can list thousands of apps)
# DeviceInformation's text answers and the fact each becomes (its column: bounds.INVENTORY_TEXT).
_DEVICE_TEXT = {
    "OSVersion": "os_version",
    "BuildVersion": "build_version",
    "Model": "model",
    "ModelName": "model_name",
    "ProductName": "product_name",
    "SerialNumber": "serial_number",
    "DeviceName": "device_name",
}


def device_information(result: Mapping[str, Any]) -> Facts:
    answers = as_dict(result.get("QueryResponses"))
    facts: Facts = {
        field: as_text(answers.get(key), INVENTORY_TEXT[field].max_len)
        for key, field in _DEVICE_TEXT.items()
    }
    facts |= {
        "supervised": as_bool(answers.get("IsSupervised")),
        "activation_lock": as_bool(answers.get("IsActivationLockEnabled")),
        "storage_capacity_gb": _non_negative(answers.get("DeviceCapacity")),
        "storage_available_gb": _non_negative(answers.get("AvailableDeviceCapacity")),
        "battery_level": _battery(answers.get("BatteryLevel")),
        "sip": as_bool(answers.get("SystemIntegrityProtectionEnabled")),
    }
    return _drop_unknown_shared(facts)


def security_info(result: Mapping[str, Any]) -> Facts:
    info = as_dict(result.get("SecurityInfo"))
    caps = as_int(info.get("HardwareEncryptionCaps"))
    passcode = as_bool(info.get("PasscodePresent"))
    facts: Facts = {
        "passcode_present": passcode,
        "passcode_compliant": as_bool(info.get("PasscodeCompliant")),
        "hardware_encryption_caps": caps,
        "data_protection": _data_protection(caps, passcode),
        "filevault": as_bool(info.get("FDE_Enabled")),
        "firewall": as_bool(as_dict(info.get("FirewallSettings")).get("FirewallEnabled")),
        "sip": as_bool(info.get("SystemIntegrityProtectionEnabled")),
    }
    return _drop_unknown_shared(facts)


def profile_list(result: Mapping[str, Any]) -> Facts:
    profiles = []
    for entry in _dicts(result.get("ProfileList")):
        identifier = as_text(entry.get("PayloadIdentifier"))
        uuid = as_text(entry.get("PayloadUUID"), 64)
        if identifier is None and uuid is None:
            continue
        profiles.append(
            {
                "identifier": identifier,
                "uuid": uuid,
                "display_name": as_text(entry.get("PayloadDisplayName")),
                "managed": as_bool(entry.get("IsManaged")),
            }
        )
    return {"profiles": profiles}


def installed_application_list(result: Mapping[str, Any]) -> Facts:
    apps = []
    for entry in _dicts(result.get("InstalledApplicationList")):
        app = {
            "id": as_text(entry.get("Identifier")),
            "name": as_text(entry.get("Name")),
            "version": as_text(entry.get("ShortVersion"), 64) or as_text(entry.get("Version"), 64),
        }
        if app["id"] or app["name"]:
            apps.append(app)
    return {"installed_apps": apps}


def managed_application_list(result: Mapping[str, Any]) -> Facts:
    apps: list[dict[str, Any]] = []
    for bundle_id, entry in as_dict(result.get("ManagedApplicationList")).items():
        if isinstance(bundle_id, str) and bundle_id:
            details = as_dict(entry)
            apps.append({"id": bundle_id[:256], "status": as_text(details.get("Status"), 64)})
    return {"managed_apps": sorted(apps, key=lambda app: app["id"])[:MAX_ITEMS]}


def certificate_list(result: Mapping[str, Any]) -> Facts:
    certificates = []
    for entry in _dicts(result.get("CertificateList")):
        data = entry.get("Data")
        der = data if isinstance(data, bytes) else None
        certificates.append(
            {
                "common_name": as_text(entry.get("CommonName")),
                "is_identity": as_bool(entry.get("IsIdentity")),
                "sha256": hashlib.sha256(der).hexdigest() if der else None,
                "not_after": _not_after(der),
            }
        )
    return {"certificates": certificates}


PARSERS: dict[str, Callable[[Mapping[str, Any]], Facts]] = {
    "DeviceInformation": device_information,
    "SecurityInfo": security_info,
    "ProfileList": profile_list,
    "InstalledApplicationList": installed_application_list,
    "ManagedApplicationList": managed_application_list,
    "CertificateList": certificate_list,
}


def parse(request_type: str, result: Mapping[str, Any]) -> Facts:
    """The facts in one answer; {} for a command inventory does not read."""
    parser = PARSERS.get(request_type)
    return parser(result) if parser is not None else {}


# Helpers ----------------------------------------------------------------------------------------


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in as_list(value)[:MAX_ITEMS] if isinstance(item, Mapping)]


def _drop_unknown_shared(facts: Facts) -> Facts:
    return {k: v for k, v in facts.items() if v is not None or k not in SHARED_FIELDS}


def _non_negative(value: Any) -> float | None:
    number = as_float(value)
    return round(number, 3) if number is not None and number >= 0 else None


def _battery(value: Any) -> float | None:
    """A fraction 0..1; Apple sends -1 when it cannot tell. A percentage is scaled down."""
    level = as_float(value)
    if level is None or level < 0:
        return None
    if level > 1:
        level = level / 100 if level <= 100 else None
    return round(level, 3) if level is not None else None


def _data_protection(caps: int | None, passcode: bool | None) -> bool | None:
    """iOS data protection needs block- and file-level encryption (caps 1|2) and a passcode."""
    if caps is None:
        return None
    if caps & 3 != 3:
        return False
    return passcode


def _not_after(der: bytes | None) -> str | None:
    if not der:
        return None
    try:
        moment = x509.load_der_x509_certificate(der).not_valid_after_utc
    except (ValueError, x509.InvalidVersion):  # InvalidVersion is no ValueError
        return None
    return moment.astimezone(UTC).isoformat()


def utc_iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None
