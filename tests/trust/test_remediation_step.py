"""Remediation decided while the device's answer is read is queued by the remediation step
(service/next_command.py) and handed out in the same request, like any queued command."""

from __future__ import annotations

import plistlib
import time

from mdmserver.protocol.commands import new_command
from mdmserver.testing.http import send
from mdmserver.web.runtime import runtime
from tests.trust.conftest import POLICY, enroll

NO_PASSCODE = {"SecurityInfo": {"PasscodePresent": False, "HardwareEncryptionCaps": 3}}


def _answer_security_info(app, live_server, device) -> bytes:
    command = new_command("SecurityInfo")
    runtime(app).storage.enqueue(command, [device.udid])
    fetched = plistlib.loads(send(live_server, device.idle()).content)
    assert fetched["CommandUUID"] == command.command_uuid
    reply = send(live_server, device.result("Acknowledged", command.command_uuid, **NO_PASSCODE))
    assert reply.status_code == 200, reply.text
    return reply.content


def test_device_lock_is_handed_out_in_the_answering_request(app, live_server, pki, admin):
    policy = {**POLICY, "remediation": {"device_lock_after_hours": 0.0001}}  # 0.36 s
    assert admin.put("/api/v1/compliance/policy", policy).status_code == 200
    device = pki.device()
    enroll(live_server, device)
    # The first non-compliant answer starts the grace period: no lock yet.
    assert _answer_security_info(app, live_server, device) == b""
    time.sleep(0.5)
    # The next one is past it: the DeviceLock is queued and is this request's reply.
    reply = _answer_security_info(app, live_server, device)
    command = plistlib.loads(reply)
    assert command["Command"]["RequestType"] == "DeviceLock"
    queued = runtime(app).storage.command_targets(command["CommandUUID"])
    assert [q.request_type for q in queued] == ["DeviceLock"]
    # Nothing is left over for a later request: the step emptied what it was given.
    remediator = runtime(app).inventory.compliance.remediator
    assert remediator._due == {}
