"""The re-enrollment rule (issue 12, item 1) and what a re-enrollment keeps (item 8), over real
HTTP with identities issued by the server's SCEP endpoint and real CMS signatures.

Attacks: a holder of an ordinary enrollment token gets a fresh identity and Authenticates as an
enrolled victim (device channel, user channel, User Enrollment): 403, logged, and nothing
changed (every table, the binding, the queue, the trust answer). Legitimate paths: CheckOut,
an acknowledged EraseDevice, an expired identity, an admin's one-time allowance, an identity
issued for that very device.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from mdmserver.crypto.ca import fingerprint_sha256
from mdmserver.protocol.commands import new_command
from mdmserver.scep.message import MessageType
from mdmserver.storage.base import EnrollmentStatus, QueueStatus
from mdmserver.storage.sql.compliance_store import ComplianceStore
from mdmserver.storage.sql.schema import cert_bindings
from mdmserver.testing.enrollment import scep_request
from mdmserver.testing.http import command_of, drain, send, snapshot
from mdmserver.web.runtime import runtime

USER_ID = "A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883"


def _attacker(victim, fresh_identity):
    """The victim's UDID and serial (not secrets), with an identity of the attacker's own."""
    cert, key = fresh_identity()
    return replace(victim, certificate=cert, key=key, push_token=b"attacker" * 4)


def _refused_and_nothing_changed(app, live_server, keys, victim, requests_sent):
    """Send each request: every one is 403 and leaves the database and trust as they were."""
    engine = runtime(app).engine
    trust_before = keys.trust(f"devices/{victim.udid}")
    before = snapshot(engine)
    for request in requests_sent:
        reply = send(live_server, request)
        assert reply.status_code == 403, reply.text
        if b"<string>Authenticate</string>" in request.body:
            assert "enrolled with another identity" in reply.text, reply.text
        else:
            assert "not bound to this device" in reply.text, reply.text
    assert snapshot(engine) == before, "a refused re-enrollment changed the database"
    assert keys.trust(f"devices/{victim.udid}") == trust_before
    storage = runtime(app).storage
    assert storage.device_for_certificate(fingerprint_sha256(victim.certificate)) == victim.udid


def test_fresh_identity_cannot_take_over_an_active_device(
    app, live_server, enroll, fresh_identity, keys, reenroll_log
):
    victim = enroll()
    storage = runtime(app).storage
    lock = new_command("DeviceLock", {"PIN": "123456"})
    storage.enqueue(lock, [victim.udid])
    attacker = _attacker(victim, fresh_identity)
    _refused_and_nothing_changed(
        app,
        live_server,
        keys,
        victim,
        [attacker.authenticate(), attacker.token_update(), attacker.authenticate()],
    )
    [event, _] = reenroll_log.events("reenroll_refused")
    assert event == {
        "device_id": victim.udid,
        "bound_cert": fingerprint_sha256(victim.certificate),
        "presented_cert": fingerprint_sha256(attacker.certificate),
    }
    # The real device still gets its DeviceLock.
    assert command_of(send(live_server, victim.idle()))["CommandUUID"] == lock.command_uuid


def test_fresh_identity_cannot_take_over_a_user_channel(
    app, live_server, enroll, fresh_identity, keys
):
    victim = enroll()
    user = send(live_server, victim.token_update(UserID=USER_ID, UserShortName="ann"))
    assert user.status_code == 200, user.text
    attacker = _attacker(victim, fresh_identity)
    _refused_and_nothing_changed(
        app,
        live_server,
        keys,
        victim,
        [
            attacker.authenticate(UserID=USER_ID),
            attacker.token_update(UserID=USER_ID, UserShortName="ann"),
            attacker.authenticate(),
        ],
    )
    channel = runtime(app).storage.enrollment(f"{victim.udid}:{USER_ID}")
    assert channel.push_token_hex == victim.push_token.hex()


def _user_enrollment(device, message_type, **extra):
    message = {
        "MessageType": message_type,
        "Topic": device.topic,
        "EnrollmentID": device.udid,
        **extra,
    }
    if message_type == "Authenticate":
        message.update(OSVersion="17.4", BuildVersion="21E219", ProductName="iPhone15,2")
        message.update(Model="iPhone", ModelName="iPhone", DeviceName="iPhone")
    else:
        message.update(Token=device.push_token, PushMagic=device.push_magic)
    return device.checkin(message)


def test_fresh_identity_cannot_take_over_a_user_enrollment(
    app, live_server, tokens, ca_cert, fresh_identity, keys
):
    from mdmserver.testing.device import VirtualDevice
    from mdmserver.testing.pki import TEST_TOPIC

    cert, key = fresh_identity()
    victim = VirtualDevice(cert, key, TEST_TOPIC, udid="8E2C4F7D-1C3B-4A5E-9F60-7A8B9C0D1E2F")
    for message_type in ("Authenticate", "TokenUpdate"):
        reply = send(live_server, _user_enrollment(victim, message_type))
        assert reply.status_code == 200, reply.text
    assert runtime(app).storage.enrollment(victim.udid).status == EnrollmentStatus.ACTIVE
    attacker = _attacker(victim, fresh_identity)
    _refused_and_nothing_changed(
        app,
        live_server,
        keys,
        victim,
        [
            _user_enrollment(attacker, "Authenticate"),
            _user_enrollment(attacker, "TokenUpdate"),
        ],
    )


def test_the_token_and_its_tags_do_not_matter(app, live_server, enroll, tokens, ca_cert, keys):
    """An attacker with a token carrying the victim's own tags is refused all the same."""
    from mdmserver.testing.enrollment import scep_identity

    victim = enroll()
    cert, key = scep_identity(live_server, ca_cert, tokens.create(tags=("exec",)).token)
    attacker = replace(victim, certificate=cert, key=key)
    _refused_and_nothing_changed(app, live_server, keys, victim, [attacker.authenticate()])


def test_replayed_authenticate_keeps_a_queued_erase(
    app, live_server, tokens, ca_cert, keys, fresh_identity
):
    """The device's own signed Authenticate, sent again by someone who captured it: the
    EraseDevice queued since stays queued and reaches the device, and the enrollment (pending
    again) is no easier to take over."""
    from mdmserver.testing.device import VirtualDevice
    from mdmserver.testing.enrollment import scep_identity
    from mdmserver.testing.pki import TEST_TOPIC

    cert, key = scep_identity(live_server, ca_cert, tokens.create().token)
    device = VirtualDevice(cert, key, TEST_TOPIC)
    authenticate = device.authenticate()  # the captured request
    assert send(live_server, authenticate).status_code == 200
    assert send(live_server, device.token_update()).status_code == 200
    drain(live_server, device)
    storage = runtime(app).storage
    erase = new_command("EraseDevice", {"PIN": "123456"})
    other = new_command("ProfileList")
    storage.enqueue(erase, [device.udid], priority=10)
    storage.enqueue(other, [device.udid])

    reply = send(live_server, authenticate)  # the replay
    assert reply.status_code == 200, reply.text
    assert [item.command_uuid for item in storage.queue(device.udid)] == [erase.command_uuid]
    assert storage.command_targets(other.command_uuid)[0].status == QueueStatus.CANCELLED
    assert storage.device_for_certificate(fingerprint_sha256(cert)) == device.udid
    attacker = _attacker(device, fresh_identity)
    assert send(live_server, attacker.authenticate()).status_code == 403
    assert storage.device_for_certificate(fingerprint_sha256(cert)) == device.udid
    # The real device carries on (its next TokenUpdate) and receives the wipe first.
    assert send(live_server, device.token_update()).status_code == 200
    command = command_of(send(live_server, device.idle()))
    assert command["CommandUUID"] == erase.command_uuid
    assert command["Command"]["RequestType"] == "EraseDevice"


# Legitimate re-enrollments ----------------------------------------------------------------------


def _reenroll(live_server, device, fresh_identity):
    """The same device with a new identity: Authenticate and TokenUpdate both succeed."""
    cert, key = fresh_identity()
    again = replace(device, certificate=cert, key=key)
    for request in (again.authenticate(), again.token_update()):
        reply = send(live_server, request)
        assert reply.status_code == 200, reply.text
    return again


def _assert_rebound(app, live_server, old, new):
    storage = runtime(app).storage
    assert storage.device_for_certificate(fingerprint_sha256(new.certificate)) == new.udid
    assert storage.device_for_certificate(fingerprint_sha256(old.certificate)) is None
    assert storage.enrollment(new.udid).status == EnrollmentStatus.ACTIVE
    assert send(live_server, old.idle()).status_code == 403


def test_checkout_then_reenroll_keeps_the_security_commands(
    app, live_server, enroll, fresh_identity, keys
):
    device = enroll()
    storage = runtime(app).storage
    lock = new_command("DeviceLock", {"PIN": "123456"})
    listing = new_command("ProfileList")
    storage.enqueue(lock, [device.udid])
    storage.enqueue(listing, [device.udid])
    assert send(live_server, device.check_out()).status_code == 200
    assert keys.trust(f"devices/{device.udid}")["managed"] is False

    again = _reenroll(live_server, device, fresh_identity)
    _assert_rebound(app, live_server, device, again)
    assert storage.command_targets(listing.command_uuid)[0].status == QueueStatus.CANCELLED
    handed_out = drain(live_server, again)
    assert handed_out[0] == "DeviceLock"
    assert storage.command_targets(lock.command_uuid)[0].status == QueueStatus.ACKNOWLEDGED


def test_erase_acknowledged_then_reenroll(app, live_server, enroll, fresh_identity, reenroll_log):
    device = enroll()
    erase = new_command("EraseDevice", {"PIN": "123456"})
    runtime(app).storage.enqueue(erase, [device.udid])
    # Not yet acknowledged: a new identity is still refused.
    cert, key = fresh_identity()
    early = replace(device, certificate=cert, key=key)
    assert send(live_server, early.authenticate()).status_code == 403
    assert command_of(send(live_server, device.idle()))["CommandUUID"] == erase.command_uuid
    ack = send(live_server, device.result("Acknowledged", erase.command_uuid))
    assert ack.status_code == 200, ack.text

    again = _reenroll(live_server, device, fresh_identity)
    _assert_rebound(app, live_server, device, again)
    [allowed] = reenroll_log.events("reenroll_allowed")
    assert allowed["reason"] == "EraseDevice acknowledged"


def test_expired_identity_can_be_replaced(app, live_server, enroll, fresh_identity):
    device = enroll()
    with runtime(app).engine.begin() as conn:
        conn.execute(
            update(cert_bindings)
            .where(cert_bindings.c.device_id == device.udid)
            .values(not_after=datetime.now(UTC) - timedelta(minutes=1))
        )
    _reenroll(live_server, device, fresh_identity)


def test_admin_allowance_is_used_once(app, live_server, enroll, fresh_identity, keys):
    device = enroll()
    reply = keys.post(f"/devices/{device.udid}/allow-reenroll", {"for": "2h"})
    assert reply.status_code == 200, reply.text
    until = datetime.fromisoformat(reply.json()["allowed_until"].replace("Z", "+00:00"))
    assert timedelta(minutes=119) < until - datetime.now(UTC) <= timedelta(hours=2)
    entry = runtime(app).admin.store.audit_entries(limit=1)[0]
    assert (entry.action, entry.targets, entry.outcome) == (
        "device.allow_reenroll",
        [device.udid],
        "ok",
    )

    again = _reenroll(live_server, device, fresh_identity)
    _assert_rebound(app, live_server, device, again)
    # The allowance is spent: the next new identity is refused, and changes nothing.
    _refused_and_nothing_changed(
        app, live_server, keys, again, [_attacker(again, fresh_identity).authenticate()]
    )


def test_expired_admin_allowance_is_refused(app, live_server, enroll, fresh_identity, keys):
    device = enroll()
    runtime(app).admin.identities.store.allow_reenroll(
        device.udid, datetime.now(UTC) - timedelta(seconds=1)
    )
    _refused_and_nothing_changed(
        app, live_server, keys, device, [_attacker(device, fresh_identity).authenticate()]
    )


def test_allow_reenroll_refusals(app, live_server, enroll, keys):
    device = enroll()
    for body, status in (
        ({"for": "forever"}, 400),
        ({"for": "90d"}, 400),
        ({"for": 24}, 400),
        ({"until": "1h"}, 400),
        (["1h"], 400),
    ):
        reply = keys.post(f"/devices/{device.udid}/allow-reenroll", body)
        assert reply.status_code == status, (body, reply.text)
        assert "for" in reply.json()["error"] or "object" in reply.json()["error"]
    assert keys.post("/devices/NO-SUCH-DEVICE/allow-reenroll").status_code == 404
    assert runtime(app).admin.identities.store.current_binding(device.udid).allowed_until is None


def test_renewed_identity_may_authenticate(app, live_server, enroll, ca_cert):
    """A renewal of X that our CA issued for the device is the device: it may start over."""
    device = enroll()
    attempt = scep_request(
        live_server,
        ca_cert,
        None,
        signer=(device.certificate, device.key),
        message_type=MessageType.RenewalReq,
    )
    renewed = replace(device, certificate=attempt.certificate, key=attempt.key)
    for request in (renewed.authenticate(), renewed.token_update()):
        assert send(live_server, request).status_code == 200
    _assert_rebound(app, live_server, device, renewed)


def test_reenrollment_resets_compliance_and_trust(app, live_server, enroll, fresh_identity, keys):
    device = enroll()
    ComplianceStore(runtime(app).engine).save(device.udid, "compliant", [], [], datetime.now(UTC))
    assert keys.trust(f"devices/{device.udid}")["compliant"] is True
    assert send(live_server, device.check_out()).status_code == 200
    again = _reenroll(live_server, device, fresh_identity)
    answer = keys.trust(f"devices/{again.udid}")
    assert answer["managed"] is True and answer["compliant"] is False
    assert answer["reasons"] == ["enrolled again: waiting for fresh inventory"]
    fingerprint = fingerprint_sha256(again.certificate)
    assert keys.trust(f"certificate/{fingerprint}")["compliant"] is False


def test_open_setting_lets_any_identity_in(app_config, ca_cert, reenroll_log):
    import logging

    from mdmserver.app import create_app
    from mdmserver.enrollment.service import EnrollmentTokens
    from mdmserver.testing.device import VirtualDevice
    from mdmserver.testing.enrollment import scep_identity
    from mdmserver.testing.http import serve
    from mdmserver.testing.pki import TEST_TOPIC
    from mdmserver.web.runtime import runtime

    warnings = []
    logging.getLogger("mdmserver.app").addHandler(reenroll_log)
    try:
        open_app = create_app(replace(app_config, reenroll="open"))
    finally:
        logging.getLogger("mdmserver.app").removeHandler(reenroll_log)
    warnings = [r for r in reenroll_log.records if r.getMessage() == "reenroll_open"]
    assert warnings and warnings[0].levelname == "WARNING"
    tokens = EnrollmentTokens(runtime(open_app).enrollment.store)
    try:
        with serve(open_app) as url:
            cert, key = scep_identity(url, ca_cert, tokens.create().token)
            device = VirtualDevice(cert, key, TEST_TOPIC)
            for request in (device.authenticate(), device.token_update()):
                assert send(url, request).status_code == 200
            cert, key = scep_identity(url, ca_cert, tokens.create().token)
            _reenroll(url, device, lambda: (cert, key))
    finally:
        runtime(open_app).close()


def test_reenroll_setting_is_strict_or_open(tmp_path):
    from mdmserver.config import ConfigError, load_config

    home = {"home": tmp_path}
    assert load_config(environ={}, overrides=home).reenroll == "strict"
    assert load_config(environ={"MDM_REENROLL": "open"}, overrides=home).reenroll == "open"
    with pytest.raises(ConfigError, match="MDM_REENROLL"):
        load_config(environ={"MDM_REENROLL": "loose"}, overrides=home)
