"""CertAuth on the in-memory ports: which certificate may speak for which device, and that a
refused request changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from memory_stack import Device, Stack, command_of

from mdmserver.protocol.commands import new_command
from mdmserver.service.errors import DeviceForbidden
from mdmserver.storage.base import EnrollmentStatus, QueueStatus
from mdmserver.storage.sql.types import utcnow


def test_authenticate_binds_the_certificate_to_the_device(stack: Stack) -> None:
    ipad = stack.device("UDID-A")
    stack.enroll(ipad)
    assert stack.storage.device_for_certificate(ipad.request.fingerprint) == "UDID-A"
    assert stack.storage.enrollment_status("UDID-A") == EnrollmentStatus.ACTIVE


def test_a_certificate_bound_to_one_device_is_refused_for_another(stack: Stack) -> None:
    ipad = stack.device("UDID-A")
    stack.enroll(ipad)
    events_before = list(stack.storage.events)
    impostor = Device("UDID-B", ipad.request)  # device A's identity, claiming to be B
    with pytest.raises(DeviceForbidden, match="bound to device UDID-A"):
        stack.checkin(impostor, "Authenticate")
    assert "UDID-B" not in stack.storage.devices
    assert stack.storage.enrollment("UDID-B") is None
    assert stack.storage.events == events_before
    assert stack.storage.device_for_certificate(ipad.request.fingerprint) == "UDID-A"


def test_an_unbound_certificate_gets_nothing_from_the_queue(stack: Stack) -> None:
    ipad = stack.device("UDID-A")
    stack.enroll(ipad)
    command = new_command("DeviceInformation", {"Queries": ["OSVersion"]})
    stack.storage.enqueue(command, ["UDID-A"])
    stranger = stack.device("UDID-A")  # same UDID, an identity never bound to it
    with pytest.raises(DeviceForbidden, match="not bound to this device"):
        stack.connect(stranger, "Idle")
    with pytest.raises(DeviceForbidden):
        stack.checkin(stranger, "TokenUpdate", Token=b"\x01" * 32, PushMagic="EVIL")
    [item] = stack.storage.queue("UDID-A")
    assert item.status == QueueStatus.QUEUED and item.sent_at is None  # still undelivered
    assert stack.storage.enrollment("UDID-A").push_magic == "MAGIC"  # type: ignore[union-attr]
    # The device's own identity still gets it.
    assert command_of(stack.connect(ipad, "Idle"))["CommandUUID"] == command.command_uuid  # type: ignore[index]


def test_reenrollment_with_a_new_identity_needs_a_reason(stack: Stack) -> None:
    ipad = stack.device("UDID-A")
    stack.enroll(ipad)
    replacement = stack.device("UDID-A")
    with pytest.raises(DeviceForbidden, match="enrolled with another identity"):
        stack.checkin(replacement, "Authenticate")
    # Refused before anything was stored: still enrolled, still bound to the old identity.
    assert stack.storage.enrollment_status("UDID-A") == EnrollmentStatus.ACTIVE
    assert stack.storage.is_bound("UDID-A", ipad.request.fingerprint)
    assert not stack.storage.is_bound("UDID-A", replacement.request.fingerprint)
    # An acknowledged EraseDevice is such a reason: a wiped device enrolls again.
    erase = new_command("EraseDevice", {"PIN": "123456"})
    stack.storage.enqueue(erase, ["UDID-A"])
    assert command_of(stack.connect(ipad, "Idle"))["CommandUUID"] == erase.command_uuid  # type: ignore[index]
    stack.connect(ipad, "Acknowledged", erase.command_uuid)
    stack.enroll(replacement)
    assert stack.storage.is_bound("UDID-A", replacement.request.fingerprint)
    assert not stack.storage.is_bound("UDID-A", ipad.request.fingerprint)
    with pytest.raises(DeviceForbidden):
        stack.connect(ipad, "Idle")  # the old identity no longer speaks for the device


def test_an_admin_allowance_lets_one_new_identity_in(stack: Stack) -> None:
    ipad = stack.device("UDID-A")
    stack.enroll(ipad)
    stack.storage.allow_reenroll("UDID-A", utcnow() + timedelta(minutes=5))
    first, second = stack.device("UDID-A"), stack.device("UDID-A")
    stack.enroll(first)
    assert stack.storage.is_bound("UDID-A", first.request.fingerprint)
    with pytest.raises(DeviceForbidden, match="enrolled with another identity"):
        stack.checkin(second, "Authenticate")  # the allowance was used up
    assert stack.storage.is_bound("UDID-A", first.request.fingerprint)


def test_after_check_out_a_new_identity_may_enroll(stack: Stack) -> None:
    ipad = stack.device("UDID-A")
    stack.enroll(ipad)
    stack.checkin(ipad, "CheckOut")
    fresh = stack.device("UDID-A")
    stack.enroll(fresh)
    assert stack.storage.enrollment_status("UDID-A") == EnrollmentStatus.ACTIVE
    assert stack.storage.device_for_certificate(fresh.request.fingerprint) == "UDID-A"
