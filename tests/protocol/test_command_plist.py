"""The command plist a device receives."""

from __future__ import annotations

import plistlib
import uuid

import pytest

from mdmserver.protocol.commands import Command, new_command


def test_command_round_trips_through_plistlib() -> None:
    command = new_command("DeviceInformation", {"Queries": ["UDID", "SerialNumber"]})
    assert plistlib.loads(command.to_plist()) == {
        "CommandUUID": command.command_uuid,
        "Command": {"RequestType": "DeviceInformation", "Queries": ["UDID", "SerialNumber"]},
    }


def test_data_payload_survives_as_data() -> None:
    profile = b"<signed profile bytes>"
    command = new_command("InstallProfile", {"Payload": profile}, command_uuid="CMD-1")
    parsed = plistlib.loads(command.to_plist())
    assert parsed["CommandUUID"] == "CMD-1"
    assert parsed["Command"]["Payload"] == profile


def test_command_without_payload() -> None:
    parsed = plistlib.loads(new_command("ProfileList").to_plist())
    assert parsed["Command"] == {"RequestType": "ProfileList"}


def test_default_uuid_is_an_upper_case_uuid4() -> None:
    first, second = new_command("ProfileList"), new_command("ProfileList")
    assert uuid.UUID(first.command_uuid).version == 4
    assert first.command_uuid == first.command_uuid.upper()
    assert first.command_uuid != second.command_uuid


def test_payload_is_copied() -> None:
    payload = {"Identifier": "com.example.wifi"}
    command = new_command("RemoveProfile", payload)
    payload["Identifier"] = "changed"
    assert command.payload == {"Identifier": "com.example.wifi"}


@pytest.mark.parametrize("request_type", ["", None])
def test_empty_request_type_is_refused(request_type: str | None) -> None:
    with pytest.raises(ValueError, match="RequestType must be a non-empty string"):
        new_command(request_type)  # type: ignore[arg-type]


def test_payload_with_its_own_request_type_is_refused() -> None:
    with pytest.raises(ValueError, match="must not contain RequestType"):
        new_command("DeviceLock", {"RequestType": "EraseDevice"})


def test_empty_command_uuid_is_refused() -> None:
    with pytest.raises(ValueError, match="CommandUUID"):
        Command(command_uuid="", request_type="ProfileList", payload={})


def test_non_mapping_payload_is_refused() -> None:
    with pytest.raises(ValueError, match="payload must be a mapping"):
        new_command("DeviceLock", ["PIN"])  # type: ignore[arg-type]


def test_unwritable_payload_names_the_command() -> None:
    command = new_command("Settings", {"Value": None})
    with pytest.raises(ValueError, match="Settings payload cannot be written as a plist"):
        command.to_plist()
