"""Last seen on the in-memory ports: the recorder batches what the middleware notes, and a
time never moves backwards."""

from __future__ import annotations

from datetime import timedelta

import pytest
from memory_stack import Stack

from mdmserver.protocol.enrollment_id import EnrollmentIdentity, EnrollmentType
from mdmserver.service.errors import DeviceForbidden
from mdmserver.service.last_seen import SeenEvents, SeenRecorder
from mdmserver.storage.base import Seen


def test_requests_mark_their_enrollment_seen_in_one_batch(stack: Stack) -> None:
    ipad = stack.device("UDID-A")
    stack.enroll(ipad)
    recorder = SeenRecorder(stack.storage, delay=3600)  # flushed by hand below
    try:
        stack.service = SeenEvents(stack.service, recorder)  # type: ignore[assignment]
        assert stack.storage.enrollment("UDID-A").last_seen_at is None  # type: ignore[union-attr]
        stack.connect(ipad, "Idle")
        stack.connect(ipad, "Idle")
        assert stack.storage.enrollment("UDID-A").last_seen_at is None  # type: ignore[union-attr]
        assert recorder.flush() == 1  # two requests, one enrollment, one write
        seen = stack.storage.enrollment("UDID-A").last_seen_at  # type: ignore[union-attr]
        assert seen is not None and seen.utcoffset() == timedelta(0)
        assert stack.storage.devices["UDID-A"].last_seen_at == seen
        assert recorder.flush() == 0
    finally:
        recorder.close()


def test_a_refused_request_is_not_seen(stack: Stack) -> None:
    recorder = SeenRecorder(stack.storage, delay=3600)
    try:
        stack.service = SeenEvents(stack.service, recorder)  # type: ignore[assignment]
        stranger = stack.device("UDID-X")
        with pytest.raises(DeviceForbidden):
            stack.connect(stranger, "Idle")
        assert recorder.flush() == 0
    finally:
        recorder.close()


def test_a_late_batch_does_not_undo_a_newer_time(stack: Stack) -> None:
    ipad = stack.device("UDID-A")
    stack.enroll(ipad)
    identity = EnrollmentIdentity(EnrollmentType.DEVICE, "UDID-A")
    recorder = SeenRecorder(stack.storage, delay=3600)
    try:
        recorder.seen(identity)
        recorder.flush()
        newest = stack.storage.enrollment("UDID-A").last_seen_at  # type: ignore[union-attr]
        assert newest is not None
        stack.storage.touch_many([Seen("UDID-A", "UDID-A", newest - timedelta(minutes=1))])
        assert stack.storage.enrollment("UDID-A").last_seen_at == newest  # type: ignore[union-attr]
    finally:
        recorder.close()
