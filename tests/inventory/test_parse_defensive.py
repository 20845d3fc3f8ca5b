"""Odd, missing and new values never raise: they become None (unknown)."""

from __future__ import annotations

import pytest

from mdmserver.inventory.parse import FIELDS, PARSERS, parse
from mdmserver.inventory.queries import device_queries, inventory_commands
from mdmserver.testing.pki import with_invalid_version

WEIRD = [None, "", "garbage", 7, -1, 1.5, float("nan"), [], {}, [1, "x", None], {"a": 1}, b"\x00"]


@pytest.mark.parametrize("request_type", sorted(PARSERS))
@pytest.mark.parametrize("value", WEIRD, ids=repr)
def test_any_shape_parses_to_known_fields(request_type, value):
    keys = (
        "QueryResponses", "SecurityInfo", "ProfileList", "InstalledApplicationList",
        "ManagedApplicationList", "CertificateList",
    )  # fmt: skip
    facts = parse(request_type, {key: value for key in keys})
    assert set(facts) <= set(FIELDS)
    facts = parse(request_type, {"QueryResponses": {"OSVersion": value, "BatteryLevel": value}})
    assert set(facts) <= set(FIELDS)


def test_types_seen_in_the_wild_are_coerced():
    facts = parse(
        "DeviceInformation",
        {
            "QueryResponses": {
                "OSVersion": 17.4,  # a number instead of a string
                "IsSupervised": 1,
                "IsActivationLockEnabled": "true",
                "BatteryLevel": 85,  # a percentage
                "DeviceCapacity": "64",
                "AvailableDeviceCapacity": -1,
                "SystemIntegrityProtectionEnabled": "sometimes",
            }
        },
    )
    assert facts["os_version"] == "17.4"
    assert facts["supervised"] is True
    assert facts["activation_lock"] is True
    assert facts["battery_level"] == 0.85
    assert facts["storage_capacity_gb"] == 64.0
    assert facts["storage_available_gb"] is None
    assert "sip" not in facts
    assert (
        parse("DeviceInformation", {"QueryResponses": {"BatteryLevel": -1.0}})["battery_level"]
        is None
    )


def test_unknown_request_type_has_no_facts():
    assert parse("Settings", {"Settings": []}) == {}


def test_queries_follow_the_schema_per_platform():
    ios = device_queries("iOS", "17.4")
    mac = device_queries("macOS", "14.0")
    assert {"OSVersion", "SerialNumber", "IsSupervised", "BatteryLevel"} <= set(ios)
    assert (
        "SystemIntegrityProtectionEnabled" in mac and "SystemIntegrityProtectionEnabled" not in ios
    )
    assert "IMEI" in ios and "IMEI" not in mac
    # An older OS is not asked about queries introduced later.
    assert len(device_queries("iOS", "9.0")) < len(ios)
    assert set(device_queries(None)) >= set(ios) | set(mac)
    commands = inventory_commands("iOS", "17.4")
    assert [c.request_type for c in commands][:5] == [
        "DeviceInformation", "SecurityInfo", "ProfileList", "InstalledApplicationList",
        "CertificateList",
    ]  # fmt: skip
    assert commands[0].payload["Queries"] == ios


def test_a_certificate_of_an_unknown_version_keeps_the_list(pki):
    """Found by tests/fuzz: cryptography's InvalidVersion escaped the parser."""
    good, _ = pki.identity("good", "ec")
    bad = with_invalid_version(good)
    facts = parse(
        "CertificateList",
        {"CertificateList": [{"CommonName": "bad", "Data": bad}, {"CommonName": "good"}]},
    )
    assert [c["common_name"] for c in facts["certificates"]] == ["bad", "good"]
    assert facts["certificates"][0]["not_after"] is None
