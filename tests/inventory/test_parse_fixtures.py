"""Parsers on real device answers (commandment's captured fixtures): normalised values, not
just "no exception"."""

from __future__ import annotations

import plistlib
from pathlib import Path
from typing import Any

import pytest

from mdmserver.inventory.parse import parse


def answer(fixtures_dir: Path, request_type: str, name: str) -> dict[str, Any]:
    return plistlib.loads((fixtures_dir / request_type / name).read_bytes())


def test_device_information_ios(fixtures_dir):
    facts = parse("DeviceInformation", answer(fixtures_dir, "DeviceInformation", "iOS-11.3.1.xml"))
    assert facts["os_version"] == "11.3.1"
    assert facts["build_version"] == "15E302"
    assert facts["model"] == "MD786X"
    assert facts["model_name"] == "iPad"
    assert facts["product_name"] == "iPad4,1"
    assert facts["serial_number"] == "C00000000004"
    assert facts["storage_capacity_gb"] == pytest.approx(26.915, abs=0.001)
    assert facts["storage_available_gb"] == pytest.approx(15.468, abs=0.001)
    # Not asked in this capture: unknown, and the shared facts are left out entirely.
    assert facts["battery_level"] is None
    assert facts["activation_lock"] is None
    assert "supervised" not in facts and "sip" not in facts


def test_device_information_macos(fixtures_dir):
    raw = answer(fixtures_dir, "DeviceInformation", "macOS-10.13.1.xml")
    facts = parse("DeviceInformation", raw)
    assert facts["os_version"] == "10.13.1"
    assert facts["build_version"] == "17B48"
    assert facts["model"] == "MacPro6,1"
    assert facts["serial_number"] == "AB123CD45G"
    assert facts["sip"] is False
    assert facts["storage_capacity_gb"] == pytest.approx(953.674, abs=0.001)
    older = parse("DeviceInformation", answer(fixtures_dir, "DeviceInformation", "10.11.x.xml"))
    assert older["os_version"] == "10.11.6" and older["model_name"] == "iMac"
    assert "sip" not in older  # 10.11 predates the key


def test_security_info_ios_no_passcode(fixtures_dir):
    facts = parse("SecurityInfo", answer(fixtures_dir, "SecurityInfo", "iOS-11.3.1.xml"))
    assert facts["passcode_present"] is False
    assert facts["passcode_compliant"] is True
    assert facts["hardware_encryption_caps"] == 3
    assert facts["data_protection"] is False  # encryption capable, but no passcode
    assert facts["filevault"] is None and facts["firewall"] is None
    ios9 = parse("SecurityInfo", answer(fixtures_dir, "SecurityInfo", "IOS-9.x.xml"))
    assert ios9["passcode_present"] is False


def test_security_info_macos(fixtures_dir):
    facts = parse("SecurityInfo", answer(fixtures_dir, "SecurityInfo", "macOS-10.13.1.xml"))
    assert facts["filevault"] is False
    assert facts["firewall"] is False
    assert facts["sip"] is False
    assert facts["passcode_present"] is None
    older = parse("SecurityInfo", answer(fixtures_dir, "SecurityInfo", "10.11.x.xml"))
    assert older["filevault"] is False and "sip" not in older and older["firewall"] is None


def test_profile_list(fixtures_dir):
    facts = parse("ProfileList", answer(fixtures_dir, "ProfileList", "iOS-11.3.1.xml"))
    assert facts["profiles"] == [
        {
            "identifier": "dev.commandment.enroll",
            "uuid": "ac9e8c32-5c15-40b9-b187-70a81c49aa4e",
            "display_name": "Commandment Enrollment Profile",
            "managed": False,
        }
    ]
    mac = parse("ProfileList", answer(fixtures_dir, "ProfileList", "10.11.x.xml"))
    assert [(p["identifier"], p["uuid"], p["managed"]) for p in mac["profiles"]] == [
        ("com.github.micromdm.micromdm.mdm", "dd3c707b-b18c-4979-bd94-2fe5cd804a47", None)
    ]


def test_certificate_list(fixtures_dir):
    mac = parse("CertificateList", answer(fixtures_dir, "CertificateList", "10.11.x.xml"))
    first, second = mac["certificates"]
    assert first["common_name"] == "com.apple.systemdefault"
    assert first["is_identity"] is True
    assert len(first["sha256"]) == 64
    assert first["not_after"].startswith("2035-03-03")
    assert second["common_name"].startswith("Apple Worldwide Developer Relations")
    assert second["is_identity"] is False and second["not_after"].startswith("2023-02-07")
    # (The iOS capture's Data is the literal "Base64=", which no plist reader accepts.)


def test_installed_application_list(fixtures_dir):
    ios = parse(
        "InstalledApplicationList",
        answer(fixtures_dir, "InstalledApplicationList", "iOS-11.3.1.xml"),
    )
    apps = {app["id"]: app for app in ios["installed_apps"]}
    assert len(apps) == 5
    assert apps["com.agilebits.onepassword-ios"] == {
        "id": "com.agilebits.onepassword-ios",
        "name": "1Password",
        "version": "7.0.6",
    }
    mac = parse(
        "InstalledApplicationList",
        answer(fixtures_dir, "InstalledApplicationList", "10.11.x.xml"),
    )
    # macOS lists bundles without an Identifier: kept by name.
    assert [(a["id"], a["name"]) for a in mac["installed_apps"]] == [
        ("com.apple.systempreferences", "System Preferences"),
        (None, "Set Info"),
        (None, "Install OS X Yosemite"),
    ]
    newer = parse(
        "InstalledApplicationList",
        answer(fixtures_dir, "InstalledApplicationList", "iOS-12.1.xml"),
    )
    assert newer["installed_apps"] and all(a["id"] for a in newer["installed_apps"])


def test_managed_application_list(fixtures_dir):
    managed = parse(
        "ManagedApplicationList",
        answer(fixtures_dir, "ManagedApplicationList", "iOS-12.1-Managed.xml"),
    )
    assert managed["managed_apps"] == [{"id": "com.apple.Numbers", "status": "Managed"}]
    failed = parse(
        "ManagedApplicationList",
        answer(fixtures_dir, "ManagedApplicationList", "iOS-12.1-Failed.xml"),
    )
    assert failed["managed_apps"] == [
        {"id": "com.apple.iWork.Keynote", "status": "Failed"},
        {"id": "com.tinyspeck.slackmacgap", "status": "Failed"},
    ]
