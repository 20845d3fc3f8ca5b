"""One test per attack on the device endpoints: each asserts the status and that nothing changed."""

from __future__ import annotations

import base64
import plistlib

import pytest
import requests

from mdmserver.crypto.ca import create_ca, dump_cert_pem, generate_key, issue_certificate
from mdmserver.protocol.commands import new_command
from mdmserver.storage.sql.schema import devices, enrollments
from mdmserver.testing.device import VirtualDevice
from mdmserver.testing.http import command_of, drain, send, settled_snapshot
from mdmserver.web.runtime import runtime


@pytest.fixture
def enrolled(app, live_server, pki):
    device = pki.device()
    assert send(live_server, device.authenticate()).status_code == 200
    assert send(live_server, device.token_update()).status_code == 200
    drain(live_server, device)  # what enrollment queued (inventory, profiles)
    return device


@pytest.fixture
def unchanged(app):
    """Call with a response: asserts the database is exactly as it was when the test began."""
    rt = runtime(app)
    flush = rt.seen.flush if rt.seen is not None else None

    class Guard:
        def __init__(self, *, seen: bool = False) -> None:
            self.seen = seen  # an accepted request (a duplicate) marks the device seen

        def __enter__(self):
            self.before = self._state()
            return self

        def __exit__(self, *exc):
            if exc[0] is None:
                assert self._state() == self.before, "a refused request changed the database"

        def _state(self):
            state = settled_snapshot(rt.engine, flush)
            if self.seen:
                for table in (devices, enrollments):
                    at = list(table.c.keys()).index("last_seen_at")
                    state[table.name] = [r[:at] + r[at + 1 :] for r in state[table.name]]
            return state

    return Guard


def test_unsigned_request(live_server, enrolled, unchanged):
    request = enrolled.idle()
    del request.headers["Mdm-Signature"]
    with unchanged():
        reply = send(live_server, request)
    assert reply.status_code == 400
    assert "Mdm-Signature" in reply.text


def test_signature_over_another_body(live_server, enrolled, unchanged):
    genuine = enrolled.idle()
    forged = plistlib.dumps({"UDID": enrolled.udid, "Status": "Idle", "Extra": "tampered"})
    with unchanged():
        reply = send(live_server, genuine, body=forged)
    assert reply.status_code == 403
    assert "does not verify" in reply.text


def test_signer_outside_trusted_cas(live_server, enrolled, unchanged):
    rogue_ca, rogue_key = create_ca("rogue CA")
    key = generate_key("rsa")
    from datetime import timedelta

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = issue_certificate(
        rogue_ca,
        rogue_key,
        key.public_key(),
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "impostor")]),
        lifetime=timedelta(days=30),
        client_auth=True,
    )
    impostor = VirtualDevice(certificate=cert, key=key, topic=enrolled.topic, udid=enrolled.udid)
    with unchanged():
        for request in (impostor.idle(), impostor.authenticate(), impostor.token_update()):
            reply = send(live_server, request)
            assert reply.status_code == 403
            assert "not trusted" in reply.text


def test_device_a_certificate_on_device_b(app, live_server, pki, enrolled, unchanged):
    other = pki.device()
    assert send(live_server, other.authenticate()).status_code == 200
    assert send(live_server, other.token_update()).status_code == 200
    drain(live_server, other)
    # Device A signs with its own (trusted, valid) certificate but claims to be device B.
    impersonation = VirtualDevice(
        certificate=enrolled.certificate,
        key=enrolled.key,
        topic=enrolled.topic,
        udid=other.udid,
        push_token=b"\x01" * 32,
        push_magic="attacker",
    )
    runtime(app).storage.enqueue(new_command("DeviceLock"), [other.udid])
    with unchanged():
        for request in (
            impersonation.idle(),
            impersonation.token_update(),
            impersonation.check_out(),
            impersonation.authenticate(),  # cannot re-bind B to A's certificate either
        ):
            reply = send(live_server, request)
            assert reply.status_code == 403, request.path
            assert "certificate" in reply.text
    # Device B still gets its own command.
    assert command_of(send(live_server, other.idle()))["Command"]["RequestType"] == "DeviceLock"


def test_binary_plist(live_server, enrolled, unchanged):
    body = plistlib.dumps({"UDID": enrolled.udid, "Status": "Idle"}, fmt=plistlib.FMT_BINARY)
    request = enrolled.idle()
    request.headers["Mdm-Signature"] = enrolled.sign(body)
    with unchanged():
        reply = send(live_server, request, body=body)
    assert reply.status_code == 400
    assert "binary" in reply.text


def test_oversized_body(live_server, enrolled, unchanged):
    body = b"<" * (16 * 1024 * 1024 + 1)
    with unchanged():
        reply = send(live_server, enrolled.idle(), body=body)
    assert reply.status_code == 413
    assert "larger" in reply.text


def test_entity_declaration(live_server, enrolled, unchanged):
    body = (
        b'<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        b"<plist><dict><key>UDID</key><string>&lol2;</string>"
        b"<key>Status</key><string>Idle</string></dict></plist>"
    )
    request = enrolled.idle()
    request.headers["Mdm-Signature"] = enrolled.sign(body)
    with unchanged():
        reply = send(live_server, request, body=body)
    assert reply.status_code == 400
    assert "entit" in reply.text.lower() or "doctype" in reply.text.lower()


def test_malformed_plist(live_server, enrolled, unchanged):
    body = b"<?xml version='1.0'?><plist><dict><key>UDID</key><string>x</dict></plist>"
    request = enrolled.idle()
    request.headers["Mdm-Signature"] = enrolled.sign(body)
    with unchanged():
        reply = send(live_server, request, body=body)
    assert reply.status_code == 400


def test_result_for_command_never_sent(app, live_server, enrolled, unchanged):
    queued = new_command("ProfileList")
    runtime(app).storage.enqueue(queued, [enrolled.udid])
    with unchanged():
        never_queued = send(
            live_server, enrolled.result("Acknowledged", "11111111-2222-3333-4444-555555555555")
        )
        queued_not_sent = send(live_server, enrolled.result("Acknowledged", queued.command_uuid))
    for reply in (never_queued, queued_not_sent):
        assert reply.status_code == 400
        assert "never sent" in reply.text


def test_duplicate_result_is_idempotent(app, live_server, enrolled, unchanged):
    command = new_command("SecurityInfo")
    runtime(app).storage.enqueue(command, [enrolled.udid])
    command_of(send(live_server, enrolled.idle()))
    first = enrolled.result(
        "Acknowledged", command.command_uuid, SecurityInfo={"PasscodePresent": True}
    )
    assert send(live_server, first).status_code == 200
    again = enrolled.result("Error", command.command_uuid)
    with unchanged(seen=True):
        reply = send(live_server, again)
        assert send(live_server, first).status_code == 200
    assert reply.status_code == 200 and reply.content == b""
    [item] = runtime(app).storage.command_targets(command.command_uuid)
    assert item.status == "acknowledged"


def test_wrong_content_type(live_server, enrolled, unchanged):
    with unchanged():
        checkin = send(
            live_server, enrolled.token_update(), headers={"Content-Type": "application/json"}
        )
        connect = send(live_server, enrolled.idle(), headers={"Content-Type": "application/json"})
    assert checkin.status_code == 400 and "Content-Type" in checkin.text
    assert connect.status_code == 400 and "Content-Type" in connect.text


def test_missing_keys_and_wrong_types(live_server, enrolled, unchanged):
    with unchanged():
        no_udid = send(
            live_server, enrolled.checkin({"MessageType": "TokenUpdate", "Topic": enrolled.topic})
        )
        bad_token = send(
            live_server,
            enrolled.checkin(
                {
                    "MessageType": "TokenUpdate",
                    "UDID": enrolled.udid,
                    "Topic": enrolled.topic,
                    "Token": "not-data",
                    "PushMagic": "m",
                }
            ),
        )
        unknown_type = send(
            live_server, enrolled.checkin({"MessageType": "Hello", "UDID": enrolled.udid})
        )
        bad_status = send(live_server, enrolled.result("Maybe", "1234"))
    for reply in (no_udid, bad_token, unknown_type, bad_status):
        assert reply.status_code == 400, reply.text
    assert "Token" in bad_token.text
    assert "Hello" in unknown_type.text


def test_invalid_base64_fixture_is_refused(live_server, enrolled, unchanged, fixtures_dir):
    body = (fixtures_dir / "TokenUpdate" / "iOS-11.3.1.xml").read_bytes()
    request = enrolled.token_update()
    request.headers["Mdm-Signature"] = enrolled.sign(body)
    with unchanged():
        reply = send(live_server, request, body=body)
    assert reply.status_code == 400


def test_garbage_signature_header(live_server, enrolled, unchanged):
    with unchanged():
        not_base64 = send(
            live_server, enrolled.idle(), headers={"Mdm-Signature": "%%%not base64%%%"}
        )
        not_cms = send(
            live_server,
            enrolled.idle(),
            headers={"Mdm-Signature": base64.b64encode(b"\x30\x03\x02\x01\x01").decode()},
        )
    assert not_base64.status_code == 403
    assert not_cms.status_code == 403


def test_client_cert_header_is_ignored_unless_configured(live_server, enrolled, unchanged):
    request = enrolled.idle()
    del request.headers["Mdm-Signature"]
    pem = dump_cert_pem(enrolled.certificate).decode()
    with unchanged():
        reply = send(live_server, request, headers={"X-Client-Cert": requests.utils.quote(pem)})
    assert reply.status_code == 400
