"""The command loop on the in-memory ports: what a device gets next after Idle, a result or a
NotNow, and what a result for a command it never got does (nothing)."""

from __future__ import annotations

import pytest
from memory_stack import Device, Stack, command_of

from mdmserver.protocol.commands import new_command
from mdmserver.service.errors import BadDeviceRequest, UnknownDevice
from mdmserver.service.hooks import ResultEvent
from mdmserver.storage.base import QueueStatus


@pytest.fixture
def iphone(stack: Stack) -> Device:
    device = stack.device("UDID-PHONE")
    stack.enroll(device)
    return device


def uuid_of(stack: Stack, device: Device, status: str, command_uuid: str | None = None) -> str:
    command = command_of(stack.connect(device, status, command_uuid))
    assert command is not None, "expected a command, got an empty reply"
    return str(command["CommandUUID"])


def test_idle_with_an_empty_queue_gets_an_empty_reply(stack: Stack, iphone: Device) -> None:
    assert stack.connect(iphone, "Idle").body == b""


def test_commands_go_out_by_priority_then_age(stack: Stack, iphone: Device) -> None:
    first, second = new_command("DeviceInformation"), new_command("ProfileList")
    urgent = new_command("DeviceLock")
    for command, priority in ((first, 0), (second, 0), (urgent, 10)):
        stack.storage.enqueue(command, ["UDID-PHONE"], priority=priority)
    reply = command_of(stack.connect(iphone, "Idle"))
    assert reply is not None
    assert reply["CommandUUID"] == urgent.command_uuid
    assert reply["Command"]["RequestType"] == "DeviceLock"
    # Each answer brings the next command in the same reply.
    assert uuid_of(stack, iphone, "Acknowledged", urgent.command_uuid) == first.command_uuid
    assert uuid_of(stack, iphone, "Acknowledged", first.command_uuid) == second.command_uuid
    assert stack.connect(iphone, "Acknowledged", second.command_uuid).body == b""
    assert stack.storage.queue("UDID-PHONE") == []


def test_notnow_waits_for_the_next_idle(stack: Stack, iphone: Device) -> None:
    busy, other = new_command("InstallProfile", {"Payload": b"x"}), new_command("ProfileList")
    stack.storage.enqueue(busy, ["UDID-PHONE"], priority=5)
    stack.storage.enqueue(other, ["UDID-PHONE"])
    assert uuid_of(stack, iphone, "Idle") == busy.command_uuid
    # NotNow: the same session moves on to the next command, not the same one again.
    assert uuid_of(stack, iphone, "NotNow", busy.command_uuid) == other.command_uuid
    assert stack.connect(iphone, "Acknowledged", other.command_uuid).body == b""
    # The next Idle (a new session) offers the NotNow'd command again.
    assert uuid_of(stack, iphone, "Idle") == busy.command_uuid
    statuses = {q.command_uuid: q.status for q in stack.storage.queue("UDID-PHONE")}
    assert statuses == {busy.command_uuid: QueueStatus.SENT}


def test_a_result_for_a_command_never_sent_is_refused(stack: Stack, iphone: Device) -> None:
    pending = new_command("DeviceInformation")
    stack.storage.enqueue(pending, ["UDID-PHONE"])
    with pytest.raises(BadDeviceRequest, match="never sent"):
        stack.connect(iphone, "Acknowledged", pending.command_uuid)
    [item] = stack.storage.queue("UDID-PHONE")
    assert (item.status, item.result, item.sent_at) == (QueueStatus.QUEUED, None, None)


def test_a_duplicate_result_is_announced_once(stack: Stack, iphone: Device) -> None:
    seen: list[ResultEvent] = []
    stack.hooks.on_result("DeviceInformation", seen.append)
    command = new_command("DeviceInformation", {"Queries": ["OSVersion"]})
    stack.storage.enqueue(command, ["UDID-PHONE"])
    assert uuid_of(stack, iphone, "Idle") == command.command_uuid
    assert stack.connect(iphone, "Acknowledged", command.command_uuid).body == b""
    # A device that lost our reply sends its result again: accepted, not re-announced.
    assert stack.connect(iphone, "Acknowledged", command.command_uuid).body == b""
    assert [(e.request_type, e.result.command_uuid) for e in seen] == [
        ("DeviceInformation", command.command_uuid)
    ]
    [item] = stack.storage.queue("UDID-PHONE", include_done=True)
    assert item.status == QueueStatus.ACKNOWLEDGED


def test_an_error_result_is_stored_and_the_loop_goes_on(stack: Stack, iphone: Device) -> None:
    failing, after = new_command("InstallApplication"), new_command("ProfileList")
    stack.storage.enqueue(failing, ["UDID-PHONE"], priority=1)
    stack.storage.enqueue(after, ["UDID-PHONE"])
    assert uuid_of(stack, iphone, "Idle") == failing.command_uuid
    assert uuid_of(stack, iphone, "Error", failing.command_uuid) == after.command_uuid
    done = {q.command_uuid: q for q in stack.storage.queue("UDID-PHONE", include_done=True)}
    assert done[failing.command_uuid].status == QueueStatus.ERROR
    assert done[failing.command_uuid].result is not None  # the device's answer, as received


def test_a_checked_out_device_gets_nothing(stack: Stack, iphone: Device) -> None:
    lock = new_command("DeviceLock")
    stack.storage.enqueue(lock, ["UDID-PHONE"])
    stack.checkin(iphone, "CheckOut")
    with pytest.raises(UnknownDevice):
        stack.connect(iphone, "Idle")
    [item] = stack.storage.queue("UDID-PHONE")
    assert item.status == QueueStatus.QUEUED  # kept for when the device is back, not sent
