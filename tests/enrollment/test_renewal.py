"""Identity renewal (RenewalReq and the queued InstallProfile) and revocation, over HTTP."""

from __future__ import annotations

import plistlib
from dataclasses import replace
from datetime import timedelta
from functools import partial

import pytest
import requests

from mdmserver.crypto.ca import fingerprint_sha256
from mdmserver.enrollment.renewal import queue_renewals
from mdmserver.maintenance import maintenance_tasks, run_maintenance
from mdmserver.scep.errors import FailInfo
from mdmserver.scep.message import MessageType, PkiStatus
from mdmserver.testing.device import VirtualDevice
from mdmserver.testing.enrollment import scep_challenge, scep_request, unwrap_profile
from mdmserver.testing.http import command_of, send
from mdmserver.testing.pki import TEST_TOPIC
from mdmserver.web.runtime import runtime


def _enroll(live_server, tokens, ca_cert) -> VirtualDevice:
    """A device enrolled through the profile and SCEP, with its identity key."""
    reply = requests.get(
        f"{live_server}/mdm/enroll", params={"token": tokens.create().token}, timeout=30
    )
    attempt = scep_request(live_server, ca_cert, scep_challenge(unwrap_profile(reply.content)))
    device = VirtualDevice(certificate=attempt.certificate, key=attempt.key, topic=TEST_TOPIC)
    for request in (device.authenticate(), device.token_update()):
        assert send(live_server, request).status_code == 200
    return device


@pytest.fixture
def enrolled(live_server, tokens, ca_cert):
    return _enroll(live_server, tokens, ca_cert)


def _renew(live_server, ca_cert, device: VirtualDevice):
    return scep_request(
        live_server,
        ca_cert,
        None,
        signer=(device.certificate, device.key),
        message_type=MessageType.RenewalReq,
    )


def test_renewal_request_issues_for_the_same_device(live_server, enrolled, enrollment, ca_cert):
    attempt = _renew(live_server, ca_cert, enrolled)
    assert attempt.result.status == PkiStatus.SUCCESS
    new_cert = attempt.certificate
    record = enrollment.store.issued(fingerprint_sha256(new_cert))
    assert record.device_id == enrolled.udid and record.method == "renewalreq"

    renewed = replace(enrolled, certificate=new_cert, key=attempt.key)
    assert send(live_server, renewed.idle()).status_code == 200
    # The renewed identity replaced the old one, which is now revoked as superseded.
    reply = send(live_server, enrolled.idle())
    assert reply.status_code == 403 and "revoked" in reply.text
    assert enrollment.store.issued(fingerprint_sha256(enrolled.certificate)).revoked


def test_renewed_identity_speaks_only_for_its_device(live_server, enrolled, tokens, ca_cert):
    other = _enroll(live_server, tokens, ca_cert)
    attempt = _renew(live_server, ca_cert, enrolled)
    thief = replace(other, certificate=attempt.certificate, key=attempt.key)
    for request in (thief.idle(), thief.authenticate()):
        assert send(live_server, request).status_code == 403


def test_revoked_certificate_is_refused_everywhere(live_server, enrolled, enrollment, ca_cert):
    assert send(live_server, enrolled.idle()).status_code == 200
    revoked = enrollment.store.revoke_certificate(fingerprint_sha256(enrolled.certificate))
    assert revoked is not None and revoked.revoked
    for request in (enrolled.idle(), enrolled.token_update(), enrolled.authenticate()):
        reply = send(live_server, request)
        assert reply.status_code == 403 and "revoked" in reply.text, reply.text
    attempt = _renew(live_server, ca_cert, enrolled)
    assert attempt.result.status == PkiStatus.FAILURE
    assert attempt.result.fail_info == FailInfo.badCertId


def test_queued_renewal_replaces_the_identity(app, live_server, enrolled, enrollment, ca_cert):
    storage = runtime(app).storage
    profiles = enrollment.profiles
    # Outside the window nothing is queued; inside, one InstallProfile, once.
    assert queue_renewals(enrollment.store, storage, profiles, window=timedelta(days=30)) == 0
    window = timedelta(days=400)
    assert queue_renewals(enrollment.store, storage, profiles, window=window) == 1
    assert queue_renewals(enrollment.store, storage, profiles, window=window) == 0

    command = command_of(send(live_server, enrolled.idle()))
    assert command["Command"]["RequestType"] == "InstallProfile"
    profile = unwrap_profile(command["Command"]["Payload"])
    attempt = scep_request(live_server, ca_cert, scep_challenge(profile))
    record = enrollment.store.issued(fingerprint_sha256(attempt.certificate))
    assert record.device_id == enrolled.udid and record.method == "renew"

    renewed = replace(enrolled, certificate=attempt.certificate, key=attempt.key)
    ack = send(live_server, renewed.result("Acknowledged", command["CommandUUID"]))
    assert ack.status_code == 200, ack.text
    assert send(live_server, renewed.idle()).status_code == 200
    assert send(live_server, enrolled.idle()).status_code == 403
    # The renewal challenge is spent: the next run sees the new identity, far from expiry.
    assert queue_renewals(enrollment.store, storage, profiles, window=timedelta(days=30)) == 0
    assert plistlib.loads(plistlib.dumps(profile))["PayloadIdentifier"].startswith("mdmserver.")


def test_the_push_scan_runs_renewals_without_an_admin(app, live_server, enrolled):
    """Renewal is scheduled: the periodic scan (web process or worker) runs the upkeep tasks."""
    rt = runtime(app)
    assert {"identity_renewal", "inventory_refresh", "compliance_stale"} <= set(rt.maintenance)
    # The server's tasks, as the assembly builds them, with a window where every identity is due.
    tasks = maintenance_tasks(rt.storage, enrollment=rt.enrollment, renewal_days=400)
    rt.jobs.dispatcher.maintenance = partial(run_maintenance, tasks)
    rt.jobs.dispatcher.scan()
    queued = [item.request_type for item in rt.storage.queue(enrolled.udid)]
    assert "InstallProfile" in queued
