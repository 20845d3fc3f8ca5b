"""Answer bodies for the inventory commands, shaped like captured device answers.

DeviceInformation answers only the queried keys a device of that platform knows (unknown
queries are left out, as devices do); SecurityInfo and InstalledApplicationList differ between
iOS and macOS the way real answers do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from mdmserver.simulator.catalog import DeviceSpec

IOS_APPS = (
    ("com.apple.Pages", "Pages", "13.2"),
    ("com.apple.Keynote", "Keynote", "13.2"),
    ("com.microsoft.Office.Outlook", "Microsoft Outlook", "4.2415.0"),
    ("com.tinyspeck.chatlyio", "Slack", "24.04.10"),
    ("com.google.chrome.ios", "Chrome", "124.0.6367.88"),
    ("us.zoom.videomeetings", "Zoom", "6.0.2"),
)
MACOS_APPS = (
    ("com.apple.Safari", "Safari", "17.4.1"),
    ("com.apple.dt.Xcode", "Xcode", "15.3"),
    ("com.microsoft.Word", "Microsoft Word", "16.84"),
    ("com.google.Chrome", "Google Chrome", "124.0.6367.91"),
    ("com.tinyspeck.slackmacgap", "Slack", "4.37.101"),
    ("org.mozilla.firefox", "Firefox", "125.0.3"),
    ("com.docker.docker", "Docker", "4.29.0"),
    ("us.zoom.xos", "zoom.us", "6.0.2"),
)


def _mac_address(spec: DeviceSpec, salt: str) -> str:
    digest = hashlib.sha256((spec.udid + salt).encode()).digest()
    return ":".join(f"{b:02x}" for b in digest[:6])


def device_information(spec: DeviceSpec, queries: Sequence[str] | None) -> dict[str, Any]:
    known: dict[str, Any] = {
        "UDID": spec.udid,
        "DeviceName": spec.device_name,
        "OSVersion": spec.os_version,
        "BuildVersion": spec.build_version,
        "ProductName": spec.product_name,
        "Model": spec.model,
        "ModelName": spec.model_name,
        "SerialNumber": spec.serial_number,
        "DeviceCapacity": spec.capacity_gb,
        "AvailableDeviceCapacity": round(spec.capacity_gb * 0.41, 2),
        "IsSupervised": True,
        "IsActivationLockEnabled": False,
        "IsDeviceLocatorServiceEnabled": True,
        "IsCloudBackupEnabled": spec.platform == "iOS",
        "IsMDMLostModeEnabled": False,
        "WiFiMAC": _mac_address(spec, "wifi"),
        "BluetoothMAC": _mac_address(spec, "bt"),
    }
    if spec.platform == "iOS":
        known.update(
            BatteryLevel=0.82, IsDoNotDisturbInEffect=False, ModemFirmwareVersion="2.51.01"
        )
        if spec.model_name == "iPhone":
            known.update(IMEI="35 " + spec.serial_number[:6] + " 401234 5", ICCID="8901410")
    else:
        known.update(
            SystemIntegrityProtectionEnabled=True,
            HostName=spec.device_name.replace(" ", "-") + ".local",
            LocalHostName=spec.device_name.replace(" ", "-"),
            EthernetMACs=[_mac_address(spec, "en0")],
        )
    if not queries:
        return known
    return {key: known[key] for key in queries if key in known}


def security_info(spec: DeviceSpec) -> dict[str, Any]:
    if spec.platform == "iOS":
        return {
            "HardwareEncryptionCaps": 3,
            "PasscodePresent": True,
            "PasscodeCompliant": True,
            "PasscodeCompliantWithProfiles": True,
            "PasscodeLockGracePeriodEnforced": 0,
        }
    return {
        "FDE_Enabled": True,
        "SystemIntegrityProtectionEnabled": True,
        "AuthenticatedRootVolumeEnabled": True,
        "IsRecoveryLockEnabled": False,
        "FirewallSettings": {
            "FirewallEnabled": True,
            "BlockAllIncoming": False,
            "StealthMode": False,
        },
        "FirmwarePasswordStatus": {"PasswordExists": False, "ChangePending": False},
        "SecureBoot": {"SecureBootLevel": "full", "ExternalBootLevel": "disallowed"},
    }


def preinstalled(spec: DeviceSpec) -> list[tuple[str, str, str, int]]:
    """(bundle id, name, version, size) of the apps a device of this platform starts with."""
    apps = IOS_APPS if spec.platform == "iOS" else MACOS_APPS
    return [(b, n, v, 40_000_000 + 1_000 * i) for i, (b, n, v) in enumerate(apps)]


def installed_applications(
    spec: DeviceSpec, identifiers: Sequence[str] | None
) -> list[dict[str, Any]]:
    """The InstalledApplicationList of a device with only its preinstalled apps."""
    apps = IOS_APPS if spec.platform == "iOS" else MACOS_APPS
    chosen = [a for a in apps if not identifiers or a[0] in identifiers]
    return [
        {
            "Identifier": bundle,
            "Name": name,
            "ShortVersion": version,
            "Version": version,
            "BundleSize": 40_000_000 + 1_000 * index,
            "DynamicSize": 2_000_000,
            "IsValidated": True,
            "Installing": False,
            "BetaApp": False,
            "AdHocCodeSigned": False,
            "AppStoreVendable": spec.platform == "iOS",
            "DeviceBasedVPP": False,
            "HasUpdateAvailable": False,
        }
        for index, (bundle, name, version) in enumerate(chosen)
    ]
