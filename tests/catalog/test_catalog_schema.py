"""Accessors over the committed index: what a server author would look up."""

from __future__ import annotations

import pytest

from mdmserver.catalog.schema import (
    checkin_spec,
    command_spec,
    common_payload_keys,
    parse_version,
    payload_types,
    profile_payload_spec,
    profile_spec,
    request_types,
    supports,
)


def test_device_lock_keys_and_types() -> None:
    spec = command_spec("DeviceLock")
    assert spec is not None and spec.request_type == "DeviceLock"
    types = {k.name: (k.type, k.required) for k in spec.keys}
    assert types == {
        "Message": ("string", False),
        "PhoneNumber": ("string", False),
        "PIN": ("string", False),
    }
    assert [k.name for k in spec.response_keys] == ["MessageResult"]
    assert spec.os["iOS"].accessrights == "AllowPasscodeRemovalAndLock"


def test_device_information_queries_is_a_required_array_of_strings() -> None:
    spec = command_spec("DeviceInformation")
    assert spec is not None
    queries = spec.key("Queries")
    assert queries is not None and queries.type == "array" and queries.required
    assert queries.item is not None and queries.item.type == "string"
    assert {"UDID", "SerialNumber", "OSVersion"} <= set(queries.item.by_name)


def test_enable_lost_mode_requires_a_supervised_ios_device() -> None:
    spec = command_spec("EnableLostMode")
    assert spec is not None
    assert spec.os["iOS"].supervised is True
    assert supports(spec, "iOS", supervised=False) == "EnableLostMode requires a supervised device"
    assert supports(spec, "iOS", supervised=True) is None
    assert supports(spec, "iOS") is None, "unknown supervision gets the benefit of the doubt"


def test_erase_device_keys() -> None:
    spec = command_spec("EraseDevice")
    assert spec is not None
    assert {"PIN", "PreserveDataPlan", "DisallowProximitySetup", "ObliterationBehavior"} <= {
        k.name for k in spec.keys
    }
    preserve = spec.key("PreserveDataPlan")
    assert preserve is not None and preserve.type == "boolean" and preserve.default is False
    obliterate = spec.key("ObliterationBehavior")
    assert obliterate is not None
    assert obliterate.enum == ("Default", "DoNotObliterate", "ObliterateWithWarning", "Always")
    assert not obliterate.available_on("iOS") and obliterate.available_on("macOS")
    enabled = spec.key("ReturnToService", "Enabled")
    assert enabled is not None and enabled.type == "boolean" and enabled.required
    wifi = spec.key("ReturnToService", "WiFiProfileData")
    assert wifi is not None and wifi.type == "data"


def test_mdm_payload_keys() -> None:
    spec = profile_payload_spec("com.apple.mdm")
    assert spec is not None and spec.payload_type == "com.apple.mdm"
    for name in ("ServerURL", "Topic", "IdentityCertificateUUID"):
        key = spec.key(name)
        assert key is not None and key.type == "string" and key.required, name
    server_url = spec.key("ServerURL")
    assert server_url is not None and server_url.format == "^https://.*$"
    rights = spec.key("AccessRights")
    assert rights is not None and rights.type == "integer" and not rights.required
    assert (rights.minimum, rights.maximum) == (1, 8191)
    check_in = spec.key("CheckInURL")
    assert check_in is not None and not check_in.required
    sign = spec.key("SignMessage")
    assert sign is not None and sign.type == "boolean" and sign.default is False
    caps = spec.key("ServerCapabilities")
    assert caps is not None and caps.type == "array" and caps.item is not None
    assert caps.item.enum is not None and "com.apple.mdm.per-user-connections" in caps.item.enum


def test_scep_subject_is_an_array_of_arrays_of_string_pairs() -> None:
    spec = profile_payload_spec("com.apple.security.scep")
    assert spec is not None
    subject = spec.key("PayloadContent", "Subject")
    assert subject is not None and subject.type == "array"
    rdn = subject.item
    assert rdn is not None and rdn.type == "array"
    pair = rdn.item
    assert pair is not None and pair.type == "array"
    assert pair.item is not None and pair.item.type == "string"
    assert pair.item.repetition == (2, 2)
    keysize = spec.key("PayloadContent", "Keysize")
    assert keysize is not None and keysize.enum == (1024, 2048, 4096)


def test_listing_is_sorted_and_excludes_profile_wrappers() -> None:
    commands, payloads = request_types(), payload_types()
    assert commands == sorted(commands) and len(commands) == len(set(commands)) > 60
    assert {"DeviceLock", "InstallProfile", "Settings"} <= set(commands)
    assert {"com.apple.mdm", "com.apple.security.scep", "com.apple.MCX"} <= set(payloads)
    assert "TopLevel" not in payloads and "CommonPayloadKeys" not in payloads
    assert command_spec("NoSuchCommand") is None
    assert profile_payload_spec("com.example.nothing") is None


def test_profile_wrapper_and_common_keys() -> None:
    assert profile_spec().key("PayloadContent") is not None
    assert {k.name for k in common_payload_keys() if k.required} == {
        "PayloadIdentifier",
        "PayloadUUID",
        "PayloadType",
        "PayloadVersion",
    }


def test_checkin_messages_are_indexed_with_per_platform_keys() -> None:
    spec = checkin_spec("Authenticate")
    assert spec is not None
    device_name = spec.key("DeviceName")
    assert device_name is not None and device_name.required
    assert not device_name.available_on("iOS") and device_name.available_on("macOS")
    assert spec.root.required_for("macOS") == (
        "DeviceName",
        "ModelName",
        "Model",
        "MessageType",
        "Topic",
    )
    assert "DeviceName" not in spec.root.required_for("iOS")
    assert "DeviceName" not in spec.root.required_for(None)


def test_keys_inherit_support_from_their_command() -> None:
    spec = command_spec("DeviceLock")
    assert spec is not None
    message = spec.key("Message")
    assert message is not None
    assert message.os["iOS"].introduced == "7.0"
    assert message.os["iOS"].accessrights == "AllowPasscodeRemovalAndLock", "inherited"
    assert message.os["iOS"].sharedipad == "ignored"
    assert message.os["iOS"].sharedipad_devicechannel is True, "merged, not replaced"
    assert not message.available_on("visionOS") and not message.available_on("tvOS")


def test_recursive_definitions_resolve_lazily() -> None:
    spec = profile_payload_spec("com.apple.applicationaccess.new")
    assert spec is not None
    deep = spec.key("whiteList", "subApps", "subApps", "subApps", "bundleID")
    assert deep is not None and deep.type == "string" and deep.required


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({}, None),
        ({"os_version": "16.4"}, "ReturnToService introduced in iOS 17.0, device runs 16.4"),
        ({"os_version": "17"}, None),
        ({"os_version": "17.0.1 (21A340)"}, None),
    ],
)
def test_supports_compares_versions(kwargs: dict[str, str], reason: str | None) -> None:
    spec = command_spec("EraseDevice")
    assert spec is not None
    key = spec.key("ReturnToService")
    assert key is not None
    assert supports(key, "iOS", **kwargs) == reason  # type: ignore[arg-type]


def test_supports_reasons() -> None:
    lock, erase = command_spec("DeviceLock"), command_spec("EraseDevice")
    mdm = profile_payload_spec("com.apple.mdm")
    assert lock is not None and erase is not None and mdm is not None
    assert supports(lock, "tvOS") == "DeviceLock: not supported on tvOS"
    assert supports(lock, "macOS", user_channel=True) == (
        "DeviceLock is not supported on the user channel"
    )
    assert supports(lock, "iOS", user_channel=True) == (
        "DeviceLock is not supported on the user channel"
    ), "iOS has user channels only on Shared iPad, whose flags say no"
    assert supports(erase, "iOS", user_enrollment=True) == (
        "EraseDevice is not available with User Enrollment"
    )
    managed_id = mdm.key("ManagedAppleID")
    assert managed_id is not None
    assert supports(managed_id, "iOS", os_version="18.1", user_enrollment=True) == (
        "ManagedAppleID removed in iOS 18.0, device runs 18.1"
    )
    assert (
        supports(managed_id, "iOS", os_version="17.5") == "ManagedAppleID requires User Enrollment"
    )


def test_parse_version() -> None:
    assert parse_version("17") == (17, 0, 0) < parse_version("17.0.1") < parse_version("17.1")
    assert parse_version("10.13.4") > parse_version("10.13")
    with pytest.raises(ValueError, match="not an OS version"):
        parse_version("beta")
