"""The validator: each kind of finding at its exact path, and real-world messages passing."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from mdmserver.catalog.validate import (
    SchemaValidationError,
    ValidationError,
    assert_valid,
    validate_checkin,
    validate_command,
    validate_payload,
    validate_profile,
)

UUID = "9F8E7D6C-5B4A-4321-8765-0123456789AB"


def common(payload_type: str, **content: Any) -> dict[str, Any]:
    return {
        "PayloadType": payload_type,
        "PayloadIdentifier": f"com.example.{payload_type}",
        "PayloadUUID": UUID,
        "PayloadVersion": 1,
        **content,
    }


def scep_payload(**overrides: Any) -> dict[str, Any]:
    content = {
        "URL": "https://ca.example.com/scep",
        "Challenge": "one-time-secret",
        "Keysize": 2048,
        "Key Type": "RSA",
        "Key Usage": 5,
        "Subject": [[["C", "US"]], [["O", "Example Inc."]], [["CN", "device-1234"]]],
        "SubjectAltName": {"dNSName": ["a.example.com", "b.example.com"], "ntPrincipalName": "x"},
        **overrides,
    }
    return common("com.apple.security.scep", PayloadContent=content)


def mdm_payload(**overrides: Any) -> dict[str, Any]:
    keys = {
        "IdentityCertificateUUID": UUID,
        "Topic": "com.apple.mgmt.External.1234",
        "ServerURL": "https://mdm.example.com/mdm",
        "CheckInURL": "https://mdm.example.com/checkin",
        "SignMessage": True,
        "AccessRights": 8191,
        "ServerCapabilities": [
            "com.apple.mdm.per-user-connections",
            "com.apple.mdm.bootstraptoken",
        ],
    }
    return common("com.apple.mdm", **{**keys, **overrides})


def only(findings: list[ValidationError]) -> ValidationError:
    assert len(findings) == 1, findings
    return findings[0]


# -- real-world messages pass -------------------------------------------------


def test_device_lock_with_message_and_pin_is_valid_on_macos() -> None:
    command = {"RequestType": "DeviceLock", "Message": "Call IT", "PIN": "123456"}
    assert validate_command("DeviceLock", command, platform="macOS") == []
    assert validate_command("DeviceLock", {"CommandUUID": "x", "Command": command}) == []


def test_real_payloads_are_valid() -> None:
    passcode = common(
        "com.apple.mobiledevice.passwordpolicy",
        minLength=8,
        requireAlphanumeric=True,
        maxPINAgeInDays=90,
    )
    assert validate_payload("com.apple.mobiledevice.passwordpolicy", passcode, platform="iOS") == []
    assert validate_payload("com.apple.security.scep", scep_payload(), platform="iOS") == []
    assert validate_payload("com.apple.mdm", mdm_payload(), platform="macOS") == []


def test_a_whole_profile_is_valid() -> None:
    profile = common(
        "Configuration",
        PayloadDisplayName="Enrollment",
        PayloadContent=[scep_payload(), mdm_payload()],
        RemovalDate=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        DurationUntilRemoval=3600,  # an int is fine for <real>
        ConsentText={"default": "Please accept", "fr": "Veuillez accepter"},
    )
    assert validate_profile(profile, platform="iOS") == []


def test_settings_items_are_checked_by_their_item_name() -> None:
    settings = [
        {"Item": "Bluetooth", "Enabled": True},
        {"Item": "DeviceName", "DeviceName": "Front desk"},
        {"Item": "Wallpaper", "Image": b"\x89PNG", "Where": 2},
    ]
    assert validate_command("Settings", {"Settings": settings}, platform="iOS") == []
    settings[0]["Enabled"] = "yes"
    settings[2]["Where"] = 4
    assert validate_command("Settings", {"Settings": settings}) == [
        ValidationError("Command.Settings[0].Enabled", "expected <boolean>, got str"),
        ValidationError("Command.Settings[2].Where", "4 is not one of [1, 2, 3]"),
    ]


def test_checkin_messages_honour_platform_specific_presence() -> None:
    auth = {"MessageType": "Authenticate", "Topic": "com.apple.mgmt.x", "UDID": "0000-1111"}
    assert validate_checkin(auth, platform="iOS") == []
    assert validate_checkin(auth) == []
    assert [f.path for f in validate_checkin(auth, platform="macOS")] == [
        "DeviceName",
        "ModelName",
        "Model",
    ]
    assert only(validate_checkin({"MessageType": "Hello"})).path == "MessageType"


# -- each kind of finding ------------------------------------------------------


def test_unknown_request_and_payload_types() -> None:
    found = only(validate_command("DeviceUnlock", {}))
    assert (found.path, found.severity) == ("Command.RequestType", "error")
    assert "unknown RequestType 'DeviceUnlock'" in found.message
    found = only(validate_payload("com.apple.nothing", {}))
    assert (found.path, found.message) == ("PayloadType", "unknown PayloadType 'com.apple.nothing'")
    found = only(validate_command("DeviceLock", {"RequestType": "EraseDevice"}))
    assert found.path == "Command.RequestType"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "expected <integer>, got bool"),
        ("2048", "expected <integer>, got str"),
        (2048.0, "expected <integer>, got float"),
    ],
)
def test_wrong_types(value: Any, message: str) -> None:
    findings = validate_payload("com.apple.security.scep", scep_payload(Keysize=value))
    assert only(findings) == ValidationError("PayloadContent.Keysize", message)


def test_data_must_be_bytes_and_dates_datetimes() -> None:
    assert validate_command("InstallProfile", {"Payload": b"<plist/>"}) == []
    found = only(validate_command("InstallProfile", {"Payload": "PHBsaXN0Lz4="}))
    assert (found.path, found.message) == ("Command.Payload", "expected <data>, got str")
    profile = common("Configuration", PayloadContent=[], RemovalDate="2030-01-01")
    found = only(validate_profile(profile))
    assert (found.path, found.message) == ("RemovalDate", "expected <date>, got str")


def test_queries_item_path_and_unknown_query_warning() -> None:
    findings = validate_command("DeviceInformation", {"Queries": ["UDID", "Nonsense", 7]})
    assert findings == [
        ValidationError("Command.Queries[1]", "unknown value 'Nonsense'", "warning"),
        ValidationError("Command.Queries[2]", "expected <string>, got int"),
    ]


def test_missing_required_keys_at_every_depth() -> None:
    assert only(validate_command("InstallProfile", {})) == ValidationError(
        "Command.Payload", "missing required key"
    )
    found = only(validate_command("EraseDevice", {"ReturnToService": {"WiFiProfileData": b""}}))
    assert found == ValidationError("Command.ReturnToService.Enabled", "missing required key")
    payload = scep_payload()
    del payload["PayloadUUID"]
    assert only(validate_payload("com.apple.security.scep", payload)).path == "PayloadUUID"
    assert validate_payload("com.apple.security.scep", payload, require_common=False) == []


def test_values_outside_rangelist_range_and_format() -> None:
    found = only(validate_command("EraseDevice", {"ObliterationBehavior": "Sometimes"}))
    assert (
        found.path == "Command.ObliterationBehavior"
        and "'Sometimes' is not one of" in found.message
    )
    policy = common("com.apple.mobiledevice.passwordpolicy", minLength=17, maxFailedAttempts=1)
    assert validate_payload("com.apple.mobiledevice.passwordpolicy", policy) == [
        ValidationError("minLength", "17 is above the maximum 16"),
        ValidationError("maxFailedAttempts", "1 is below the minimum 2"),
    ]
    found = only(validate_payload("com.apple.mdm", mdm_payload(ServerURL="http://mdm.example.com")))
    assert found.path == "ServerURL" and "does not match the format ^https://" in found.message
    found = only(validate_payload("com.apple.mdm", mdm_payload(AccessRights=0)))
    assert (found.path, found.message) == ("AccessRights", "0 is below the minimum 1")


def test_scep_subject_shape_errors_have_exact_paths() -> None:
    bad_type = scep_payload(Subject=[[["CN", 5]]])
    assert only(validate_payload("com.apple.security.scep", bad_type)) == ValidationError(
        "PayloadContent.Subject[0][0][1]", "expected <string>, got int"
    )
    triple = scep_payload(Subject=[[["CN", "a", "b"]]])
    assert only(validate_payload("com.apple.security.scep", triple)) == ValidationError(
        "PayloadContent.Subject[0][0]", "expected exactly 2 items, got 3"
    )
    flat = scep_payload(Subject=[["CN", "a"]])
    assert [f.path for f in validate_payload("com.apple.security.scep", flat)] == [
        "PayloadContent.Subject[0][0]",
        "PayloadContent.Subject[0][1]",
    ]


def test_unknown_keys_are_warnings_with_a_suggestion() -> None:
    found = only(validate_command("DeviceLock", {"Mesage": "hi"}))
    assert found == ValidationError(
        "Command.Mesage", "unknown key 'Mesage'; did you mean 'Message'?", "warning"
    )
    found = only(validate_command("EraseDevice", {"ReturnToService": {"Enabled": True, "Wifi": 1}}))
    assert (found.path, found.severity) == ("Command.ReturnToService.Wifi", "warning")
    assert_valid([found])  # warnings alone do not raise


def test_wildcard_dictionaries_accept_any_key_but_check_the_value() -> None:
    relay = common(
        "com.apple.relay.managed",
        Relays=[
            {"HTTP3RelayURL": "https://relay.example.com", "AdditionalHTTPHeaderFields": {"X-A": 1}}
        ],
    )
    assert only(validate_payload("com.apple.relay.managed", relay)) == ValidationError(
        "Relays[0].AdditionalHTTPHeaderFields.X-A", "expected <string>, got int"
    )


def test_platform_specific_keys_and_commands() -> None:
    found = only(validate_command("DeviceLock", {"PIN": "123456"}, platform="iOS"))
    assert found == ValidationError("Command.PIN", "PIN is not supported on iOS")
    found = only(validate_command("DeviceLock", {}, platform="tvOS"))
    assert found == ValidationError("Command.RequestType", "DeviceLock: not supported on tvOS")
    found = only(validate_payload("com.apple.MCX", common("com.apple.MCX"), platform="iOS"))
    assert found.path == "PayloadType" and "not supported on iOS" in found.message
    with pytest.raises(ValueError, match="unknown platform"):
        validate_command("DeviceLock", {}, platform="Android")


def test_profile_paths_point_into_the_payload_list() -> None:
    profile = common(
        "Configuration", PayloadContent=[scep_payload(Challenge=123), {"PayloadVersion": 1}]
    )
    assert validate_profile(profile) == [
        ValidationError("PayloadContent[0].PayloadContent.Challenge", "expected <string>, got int"),
        ValidationError("PayloadContent[1].PayloadType", "missing required key"),
    ]


def test_assert_valid_raises_with_the_findings() -> None:
    findings = validate_command("InstallProfile", {"Payload": "text", "Extra": 1})
    with pytest.raises(SchemaValidationError) as info:
        assert_valid(findings)
    assert isinstance(info.value, ValueError)
    assert info.value.errors == findings
    assert "Command.Payload: expected <data>, got str" in str(info.value)
    with pytest.raises(SchemaValidationError):
        assert_valid(validate_command("DeviceLock", {"Mesage": "x"}), strict=True)
    assert_valid(validate_command("DeviceLock", {"Message": "x"}), strict=True)


def test_validation_is_fast() -> None:
    payload = scep_payload()
    start = time.perf_counter()
    for _ in range(2000):
        validate_payload("com.apple.security.scep", payload, platform="iOS")
        validate_command("DeviceLock", {"Message": "hi", "PhoneNumber": "555"}, platform="iOS")
    assert time.perf_counter() - start < 2.0
