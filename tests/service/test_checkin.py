"""CheckinHandlers on the in-memory ports: what each check-in changes, and what it refuses."""

from __future__ import annotations

import plistlib

import pytest
from memory_stack import PUSH_TOKEN, Stack

from mdmserver.protocol.checkin import checkin_from
from mdmserver.protocol.commands import new_command
from mdmserver.service.checkin import CheckinHandlers
from mdmserver.service.errors import BadDeviceRequest, Declined, UnknownDevice
from mdmserver.service.hooks import EnrolledEvent
from mdmserver.storage.base import EnrollmentStatus, QueueStatus
from mdmserver.testing.pki import TEST_TOPIC


def test_authenticate_then_token_update_enrolls_once(stack: Stack) -> None:
    enrolled: list[EnrolledEvent] = []
    stack.hooks.on_enrolled(enrolled.append)
    mac = stack.device("UDID-MAC")
    stack.checkin(mac, "Authenticate", SerialNumber="C02XYZ", Model="Mac14,2")
    assert stack.storage.enrollment_status("UDID-MAC") == EnrollmentStatus.PENDING
    assert stack.storage.devices["UDID-MAC"].record.serial_number == "C02XYZ"
    stack.checkin(mac, "TokenUpdate", Token=PUSH_TOKEN, PushMagic="MAGIC", UnlockToken=b"u")
    info = stack.storage.enrollment("UDID-MAC")
    assert info is not None and info.status == EnrollmentStatus.ACTIVE
    assert (info.push_token_hex, info.push_magic, info.unlock_token) == (
        PUSH_TOKEN.hex(),
        "MAGIC",
        b"u",
    )
    stack.checkin(mac, "TokenUpdate", Token=PUSH_TOKEN, PushMagic="MAGIC-2")
    assert [e.identity.id for e in enrolled] == ["UDID-MAC"]  # the first TokenUpdate only
    assert stack.storage.enrollment("UDID-MAC").push_magic == "MAGIC-2"  # type: ignore[union-attr]


def test_a_topic_we_cannot_push_to_is_refused_and_nothing_stored(stack: Stack) -> None:
    mac = stack.device("UDID-MAC")
    with pytest.raises(BadDeviceRequest, match="push topics"):
        stack.checkin(mac, "Authenticate", Topic="com.apple.mgmt.someone-else")
    assert stack.storage.devices == {} and stack.storage.enrollments == {}
    assert stack.storage.events == []


def test_token_update_without_authenticate_is_an_unknown_device(stack: Stack) -> None:
    # Straight to the handlers: CertAuth would refuse the unbound certificate first.
    handlers = CheckinHandlers(stack.storage, [TEST_TOPIC])
    message = {"MessageType": "TokenUpdate", "UDID": "UDID-MAC", "Topic": TEST_TOPIC}
    token_update = checkin_from(message | {"Token": PUSH_TOKEN, "PushMagic": "MAGIC"})
    with pytest.raises(UnknownDevice, match="has not authenticated"):
        handlers.handle(token_update)
    assert stack.storage.enrollments == {} and stack.storage.events == []


def test_check_out_cancels_the_queue_but_not_a_lock(stack: Stack) -> None:
    mac = stack.device("UDID-MAC")
    stack.enroll(mac)
    info = new_command("DeviceInformation")
    lock = new_command("DeviceLock", {"Message": "lost"})
    stack.storage.enqueue(info, ["UDID-MAC"])
    stack.storage.enqueue(lock, ["UDID-MAC"])
    stack.checkin(mac, "CheckOut")
    assert stack.storage.enrollment_status("UDID-MAC") == EnrollmentStatus.CHECKED_OUT
    assert not stack.storage.devices["UDID-MAC"].enrolled
    statuses = {
        q.request_type: q.status for q in stack.storage.queue("UDID-MAC", include_done=True)
    }
    assert statuses == {"DeviceInformation": QueueStatus.CANCELLED, "DeviceLock": "queued"}
    with pytest.raises(UnknownDevice):
        stack.checkin(mac, "TokenUpdate", Token=PUSH_TOKEN, PushMagic="MAGIC")
    assert stack.storage.enrollment_status("UDID-MAC") == EnrollmentStatus.CHECKED_OUT


def test_bootstrap_token_is_escrowed_and_given_back(stack: Stack) -> None:
    mac = stack.device("UDID-MAC")
    stack.enroll(mac)
    assert stack.checkin(mac, "GetBootstrapToken").body == b""  # none escrowed yet
    stack.checkin(mac, "SetBootstrapToken", BootstrapToken=b"secret-token")
    reply = stack.checkin(mac, "GetBootstrapToken")
    assert plistlib.loads(reply.body) == {"BootstrapToken": b"secret-token"}


def test_user_authenticate_is_declined_unless_allowed(stack: Stack) -> None:
    mac = stack.device("UDID-MAC")
    stack.enroll(mac)
    with pytest.raises(Declined):
        stack.checkin(mac, "UserAuthenticate", UserID="USER-1", DigestResponse="x")
    assert stack.storage.enrollment("UDID-MAC:USER-1") is None
