"""Command results: real-device fixtures and synthetic bad reports."""

from __future__ import annotations

import plistlib
from pathlib import Path
from typing import Any

import pytest

from mdmserver.protocol.enrollment_id import EnrollmentType
from mdmserver.protocol.errors import ProtocolError
from mdmserver.protocol.results import ErrorChainItem, Status, parse_result

MAC = "00000000-1111-2222-3333-444455556666"
IPAD = "1c111c111c111c111c111c111c111c111c111c11"
IPAD9 = "1111111111111111111111111111111111111111"

# file -> (status, CommandUUID, UDID, [(ErrorCode, ErrorDomain), ...])
RESULTS: dict[str, tuple[Status, str, str, list[tuple[int, str]]]] = {
    "AvailableOSUpdates/10.12.5.xml": (Status.ACKNOWLEDGED, MAC, MAC, []),
    "AvailableOSUpdates/iOS-11.3.1.xml": (
        Status.ACKNOWLEDGED,
        "8fb53ef6-5fcd-46c2-bf05-ee502406f240",
        IPAD,
        [],
    ),
    "AvailableOSUpdates/macOS-10.13.1.xml": (
        Status.ACKNOWLEDGED,
        "a6121a90-4100-4928-93d8-6645722bfda7",
        MAC,
        [],
    ),
    "CertificateList/10.11.x.xml": (Status.ACKNOWLEDGED, MAC, MAC, []),
    "DeviceInformation/10.11.x.xml": (Status.ACKNOWLEDGED, MAC, MAC, []),
    "DeviceInformation/iOS-11.3.1.xml": (
        Status.ACKNOWLEDGED,
        "3ab89975-490b-4f33-80c7-0982069272ba",
        IPAD,
        [],
    ),
    "DeviceInformation/macOS-10.13.1.xml": (
        Status.ACKNOWLEDGED,
        "be926f7e-9cd2-465a-ba2b-b573dc4eaa7a",
        MAC,
        [],
    ),
    "DeviceLock/iOS-11.3.1.xml": (
        Status.ACKNOWLEDGED,
        "b6c8627f-bf4a-4ef4-8f40-d8673cd568c9",
        IPAD,
        [],
    ),
    "Errors/10.12.5-invalid-command.xml": (
        Status.ERROR,
        "93a81e2a-8fbe-4e4b-b6e5-ee9148893f33",
        MAC,
        [(97, "MDMClientError")],
    ),
    "Errors/10.13.6-invalid-command.xml": (
        Status.ERROR,
        "bac6348e-3291-4523-a354-037ec379b738",
        "2F6DE437-7C14-5735-85B4-DC6B365BCAF1",
        [(12021, "MCMDMErrorDomain")],
    ),
    "Errors/error_invalid_request_type.plist": (
        Status.ERROR,
        MAC,
        MAC,
        [(12021, "MCMDMErrorDomain")],
    ),
    "Errors/iOS-11.3.1-AvailableOSUpdatesFailure.xml": (
        Status.ERROR,
        "93289d88-c8da-4732-9a7e-33dd51851b6e",
        IPAD,
        [(2213, "DeviceManagement.error"), (3, "com.apple.softwareupdateservices.errors")],
    ),
    "Errors/iOS-11.3.1-CommandFormatError.xml": (
        Status.COMMAND_FORMAT_ERROR,
        "52aab5d2-6a61-4fe8-b685-44f8b56972d0",
        IPAD,
        [],
    ),
    "Errors/iOS-11.3.1-RemoveProfile-Unmanaged.xml": (
        Status.ERROR,
        "b2da2591-a2e5-45e5-8dd8-0ffb050d8407",
        IPAD,
        [(12013, "MCMDMErrorDomain")],
    ),
    "InstallApplication/iOS-11.3.1-alreadyprompting.xml": (
        Status.ERROR,
        "94ee37e2-3e03-4bdf-ad9c-a81ccc9d78e9",
        IPAD,
        [(1407, "DeviceManagement.error")],
    ),
    "InstallApplication/iOS-12.1-prompting.xml": (
        Status.ACKNOWLEDGED,
        "7a9df3db-d661-4c1c-aa0e-56d69c8718a5",
        IPAD,
        [],
    ),
    "InstalledApplicationList/10.11.x.xml": (Status.ACKNOWLEDGED, MAC, MAC, []),
    "InstalledApplicationList/iOS-11.3.1.xml": (
        Status.ACKNOWLEDGED,
        "368b6b82-f89c-4af7-8a02-ed72af86116c",
        IPAD,
        [],
    ),
    "InstalledApplicationList/iOS-12.1.xml": (
        Status.ACKNOWLEDGED,
        "ca851cf1-e85b-4fed-bf0a-dd7a4e4859b2",
        IPAD,
        [],
    ),
    "ManagedApplicationList/iOS-11.3.1-Failed.xml": (
        Status.ACKNOWLEDGED,
        "b3f87776-66a4-40f4-a194-8b451a2eacb1",
        IPAD,
        [],
    ),
    "ManagedApplicationList/iOS-12.1-Failed.xml": (
        Status.ACKNOWLEDGED,
        "7fc66d05-4bdb-41e4-9814-5a4c21e74e16",
        IPAD,
        [],
    ),
    "ManagedApplicationList/iOS-12.1-Installing.xml": (
        Status.ACKNOWLEDGED,
        "cfaa6f63-6ea9-493c-ab2e-a534937c5eda",
        IPAD,
        [],
    ),
    "ManagedApplicationList/iOS-12.1-Managed.xml": (
        Status.ACKNOWLEDGED,
        "0a40830d-1cf9-4a00-a153-d8294e576c3f",
        IPAD,
        [],
    ),
    "ManagedApplicationList/iOS-12.1-RejectedPrompting.xml": (
        Status.ACKNOWLEDGED,
        "2dce0324-3a9c-493d-bd7a-2d2a2985a67e",
        IPAD,
        [],
    ),
    "NotNow/iOS-11.3.1.xml": (Status.NOT_NOW, "bb5d7813-e7c3-4279-b954-4b678925de5f", IPAD, []),
    "ProfileList/10.11.x.xml": (Status.ACKNOWLEDGED, MAC, MAC, []),
    "ProfileList/iOS-11.3.1.xml": (
        Status.ACKNOWLEDGED,
        "2d1d3845-3e06-4687-a357-b343ebb17888",
        IPAD,
        [],
    ),
    "SecurityInfo/10.11.x.xml": (Status.ACKNOWLEDGED, MAC, MAC, []),
    "SecurityInfo/IOS-9.x.xml": (Status.ACKNOWLEDGED, MAC, IPAD9, []),
    "SecurityInfo/iOS-11.3.1.xml": (
        Status.ACKNOWLEDGED,
        "f1048316-6628-4b32-b2f2-708d7f4d7105",
        IPAD,
        [],
    ),
    "SecurityInfo/macOS-10.13.1.xml": (
        Status.ACKNOWLEDGED,
        "bf88d054-bd86-480d-b406-a1bc74a403c0",
        MAC,
        [],
    ),
}


@pytest.mark.shared
@pytest.mark.parametrize("name", sorted(RESULTS))
def test_result_fixtures(fixtures_dir: Path, name: str) -> None:
    status, command_uuid, udid, chain = RESULTS[name]
    result = parse_result((fixtures_dir / name).read_bytes())
    assert result.status is status
    assert result.command_uuid == command_uuid
    assert result.identity.type is EnrollmentType.DEVICE
    assert result.identity.id == udid
    assert [(item.code, item.domain) for item in result.error_chain] == chain
    assert result.not_on_console is None


@pytest.mark.shared
def test_every_result_fixture_is_covered(fixtures_dir: Path) -> None:
    checkins = {"Authenticate", "TokenUpdate", "CheckOut", "dep", "itunes"}
    found = {
        str(path.relative_to(fixtures_dir))
        for path in fixtures_dir.glob("*/*")
        if path.is_file() and path.parent.name not in checkins and path.suffix != ".json"
    }
    # CertificateList/iOS-11.3.1.xml holds "Base64=" placeholders; it is refused elsewhere.
    assert found - set(RESULTS) == {"CertificateList/iOS-11.3.1.xml"}


@pytest.mark.shared
def test_error_chain_descriptions(fixtures_dir: Path) -> None:
    result = parse_result((fixtures_dir / "Errors/error_invalid_request_type.plist").read_bytes())
    text = "\u201cOSUpdateStatus\u201d is not a valid request type."
    assert result.error_chain == (ErrorChainItem(12021, "MCMDMErrorDomain", text, text),)


@pytest.mark.shared
def test_response_keys_stay_in_raw(fixtures_dir: Path) -> None:
    result = parse_result((fixtures_dir / "DeviceLock/iOS-11.3.1.xml").read_bytes())
    assert result.raw["MessageResult"] == "NoPasscodeSet"


@pytest.mark.shared
def test_placeholder_base64_result_is_refused(fixtures_dir: Path) -> None:
    with pytest.raises(ProtocolError, match="invalid base64"):
        parse_result((fixtures_dir / "CertificateList/iOS-11.3.1.xml").read_bytes())


UDID = "0A1B2C3D-0000-1111-2222-333344445555"


def report(**keys: Any) -> bytes:
    return plistlib.dumps({"UDID": UDID, **keys})


def refused(data: bytes) -> str:
    with pytest.raises(ProtocolError) as info:
        parse_result(data)
    return str(info.value)


def test_idle_has_no_command_uuid() -> None:
    result = parse_result(report(Status="Idle"))
    assert result.status is Status.IDLE
    assert result.command_uuid is None
    assert result.error_chain == ()


def test_idle_ignores_a_stray_command_uuid() -> None:
    assert parse_result(report(Status="Idle", CommandUUID="X")).command_uuid is None


@pytest.mark.parametrize("status", ["Acknowledged", "Error", "CommandFormatError", "NotNow"])
def test_non_idle_status_requires_command_uuid(status: str) -> None:
    assert refused(report(Status=status)) == "command result: key 'CommandUUID' is required"


def test_empty_command_uuid_is_refused() -> None:
    message = refused(report(Status="Acknowledged", CommandUUID=""))
    assert message == "command result: key 'CommandUUID' must not be empty"


def test_unknown_status_is_named() -> None:
    message = refused(report(Status="Maybe", CommandUUID="X"))
    assert message == "command result: unknown Status 'Maybe'"


def test_missing_status() -> None:
    assert refused(report(CommandUUID="X")) == "command result: key 'Status' is required"


def test_missing_udid() -> None:
    data = plistlib.dumps({"Status": "Idle"})
    assert refused(data) == "command result: neither UDID nor EnrollmentID is present"


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"CommandUUID": 7}, "key 'CommandUUID' must be string, got integer"),
        ({"ErrorChain": {"ErrorCode": 1}}, "key 'ErrorChain' must be array, got dictionary"),
        ({"ErrorChain": ["oops"]}, "ErrorChain[0] must be dictionary, got string"),
        (
            {"ErrorChain": [{"ErrorCode": 1}, {"ErrorCode": "12"}]},
            "ErrorChain[1]: key 'ErrorCode' must be integer, got string",
        ),
        (
            {"ErrorChain": [{"ErrorCode": True}]},
            "ErrorChain[0]: key 'ErrorCode' must be integer, got boolean",
        ),
        (
            {"ErrorChain": [{"ErrorDomain": 5}]},
            "ErrorChain[0]: key 'ErrorDomain' must be string, got integer",
        ),
        ({"NotOnConsole": "no"}, "key 'NotOnConsole' must be boolean, got string"),
        ({"UserShortName": 1}, "key 'UserShortName' must be string, got integer"),
        ({"UserLongName": b"x"}, "key 'UserLongName' must be string, got data"),
    ],
)
def test_wrong_types_are_refused(keys: dict[str, Any], expected: str) -> None:
    base: dict[str, Any] = {"Status": "Error", "CommandUUID": "C-1"}
    assert refused(report(**{**base, **keys})) == f"command result: {expected}"


def test_partial_error_chain_items_keep_what_is_there() -> None:
    result = parse_result(
        report(Status="Error", CommandUUID="C-1", ErrorChain=[{"ErrorDomain": "D"}])
    )
    assert result.error_chain == (ErrorChainItem(None, "D", None, None),)


def test_macos_user_channel_result() -> None:
    result = parse_result(
        report(
            Status="Acknowledged",
            CommandUUID="C-2",
            UserID="11112222-3333-4444-5555-666677778888",
            UserShortName="cjoe",
            UserLongName="Commando Joe",
            NotOnConsole=True,
        )
    )
    assert result.identity.type is EnrollmentType.USER
    assert result.identity.id == f"{UDID}:11112222-3333-4444-5555-666677778888"
    assert result.user_short_name == "cjoe"
    assert result.user_long_name == "Commando Joe"
    assert result.not_on_console is True


def test_user_enrollment_result() -> None:
    data = plistlib.dumps(
        {"Status": "Idle", "EnrollmentID": "ENR-1", "EnrollmentUserID": "EUSER-1"}
    )
    result = parse_result(data)
    assert result.identity.type is EnrollmentType.USER_ENROLLMENT_USER
    assert result.identity.id == "ENR-1:EUSER-1"


def test_binary_result_body_is_refused() -> None:
    data = plistlib.dumps({"Status": "Idle", "UDID": UDID}, fmt=plistlib.FMT_BINARY)
    assert refused(data) == "binary plists are not accepted; send an XML plist"
