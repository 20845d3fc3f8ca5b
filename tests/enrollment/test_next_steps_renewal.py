"""The renewal step comes first (service/next_command.py): a device whose identity is due and
that has a profile to install gets the renewal first, in the request it is making, once."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import requests

from mdmserver.testing.device import VirtualDevice
from mdmserver.testing.enrollment import scep_challenge, scep_request, unwrap_profile
from mdmserver.testing.http import command_of, send
from mdmserver.testing.pki import TEST_TOPIC
from mdmserver.web.runtime import runtime


@pytest.fixture
def app_config(app_config: Any) -> Any:
    """Every identity the server issues (365 days) is inside a 400-day renewal window."""
    return dataclasses.replace(app_config, identity_renewal_days=400)


def _enroll(live_server, tokens, ca_cert) -> VirtualDevice:
    reply = requests.get(
        f"{live_server}/mdm/enroll", params={"token": tokens.create().token}, timeout=30
    )
    attempt = scep_request(live_server, ca_cert, scep_challenge(unwrap_profile(reply.content)))
    device = VirtualDevice(certificate=attempt.certificate, key=attempt.key, topic=TEST_TOPIC)
    for request in (device.authenticate(), device.token_update()):
        assert send(live_server, request).status_code == 200
    return device


def _is_renewal(command: dict) -> bool:
    body = command["Command"]
    if body["RequestType"] != "InstallProfile":
        return False
    try:
        return bool(scep_challenge(unwrap_profile(body["Payload"])))
    except Exception:
        return False  # not an enrollment profile


def test_renewal_due_goes_before_the_profile_to_install(app, live_server, tokens, ca_cert):
    rt = runtime(app)
    device = _enroll(live_server, tokens, ca_cert)
    admin = runtime(app).profiles.admin
    admin.from_template("webclip", "clip", {})
    admin.assign("clip", "all")  # queued at once, before the device asks
    queued = [q.request_type for q in rt.storage.queue(device.udid)]
    assert "InstallProfile" in queued

    first = command_of(send(live_server, device.idle()))
    assert _is_renewal(first), first["Command"]["RequestType"]
    handed_out = [first]
    reply = send(live_server, device.result("Acknowledged", first["CommandUUID"]))
    while reply.content:
        handed_out.append(command_of(reply))
        reply = send(live_server, device.result("Acknowledged", handed_out[-1]["CommandUUID"]))
    # The profile still follows in the same session, and the renewal is not queued twice.
    installs = [c for c in handed_out if c["Command"]["RequestType"] == "InstallProfile"]
    assert len(installs) == 2 and [_is_renewal(c) for c in installs] == [True, False]
    assert send(live_server, device.idle()).content == b""
