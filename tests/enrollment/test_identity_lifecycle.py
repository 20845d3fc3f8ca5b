"""Identity lifecycle (issue 12, item 5), over real HTTP with SCEP-issued identities.

A RenewalReq is honoured only when signed by the identity bound to an active enrollment; once a
renewal is bound the superseded identity is refused everywhere; an admin can revoke a device
(CLI and API): its identities are revoked, its enrollment ends and trust says managed: false at
once; the CRL at /scep/crl lists revoked serials and verifies against the CA.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import requests
from click.testing import CliRunner
from cryptography import x509

from mdmserver.cli import main
from mdmserver.crypto.ca import fingerprint_sha256
from mdmserver.protocol.commands import new_command
from mdmserver.scep.errors import FailInfo
from mdmserver.scep.message import MessageType, PkiStatus
from mdmserver.storage.base import EnrollmentStatus
from mdmserver.testing.device import VirtualDevice
from mdmserver.testing.enrollment import scep_identity, scep_request
from mdmserver.testing.http import command_of, send, snapshot
from mdmserver.testing.pki import TEST_TOPIC
from mdmserver.web.runtime import runtime


def _renew(live_server, ca_cert, certificate, key):
    return scep_request(
        live_server, ca_cert, None, signer=(certificate, key), message_type=MessageType.RenewalReq
    )


def _renewal_refused(attempt) -> None:
    assert attempt.response.status_code == 200, attempt.response.text
    assert attempt.result.status == PkiStatus.FAILURE
    assert attempt.result.fail_info == FailInfo.badCertId
    assert attempt.result.certificate is None


def _crl(live_server, ca_cert) -> x509.CertificateRevocationList:
    reply = requests.get(f"{live_server}/scep/crl", timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(reply.content)
    assert crl.is_signature_valid(ca_cert.public_key())
    assert crl.issuer == ca_cert.subject
    assert crl.next_update_utc > datetime.now(UTC)
    return crl


def test_never_used_identity_cannot_renew_after_its_token_is_spent(
    app, live_server, tokens, ca_cert
):
    """Today's hole: an identity that never enrolled kept minting identities after its
    one-use token was used up and revoked."""
    token = tokens.create(uses=1)
    cert, key = scep_identity(live_server, ca_cert, token.token)
    assert tokens.revoke(token.info.id)
    engine = runtime(app).engine
    before = snapshot(engine)
    _renewal_refused(_renew(live_server, ca_cert, cert, key))
    assert snapshot(engine) == before, "a refused RenewalReq changed the database"


def test_superseded_identity_is_refused_everywhere(app, live_server, enroll, ca_cert, keys):
    device = enroll()
    attempt = _renew(live_server, ca_cert, device.certificate, device.key)
    assert attempt.result.status == PkiStatus.SUCCESS
    renewed = replace(device, certificate=attempt.certificate, key=attempt.key)
    assert send(live_server, renewed.idle()).status_code == 200  # the renewal is bound
    old, new = fingerprint_sha256(device.certificate), fingerprint_sha256(renewed.certificate)
    storage = runtime(app).storage
    lock = new_command("DeviceLock", {"PIN": "123456"})
    storage.enqueue(lock, [device.udid])

    engine = runtime(app).engine
    trust_before = keys.trust(f"devices/{device.udid}")
    before = snapshot(engine)
    for request in (
        device.authenticate(),  # today it took the binding back
        device.token_update(),
        device.idle(),
        device.check_out(),
    ):
        reply = send(live_server, request)
        assert reply.status_code == 403 and "revoked" in reply.text, reply.text
    _renewal_refused(_renew(live_server, ca_cert, device.certificate, device.key))
    assert snapshot(engine) == before, "the superseded identity changed the database"
    assert keys.trust(f"devices/{device.udid}") == trust_before
    assert keys.trust(f"certificate/{old}") == {"managed": False, "compliant": False}
    assert keys.trust(f"certificate/{new}")["managed"] is True
    assert storage.device_for_certificate(new) == device.udid
    assert command_of(send(live_server, renewed.idle()))["CommandUUID"] == lock.command_uuid
    assert device.certificate.serial_number in {
        entry.serial_number for entry in _crl(live_server, ca_cert)
    }


def test_revoked_device_is_unmanaged_at_once(app, live_server, enroll, ca_cert, keys):
    device = enroll()
    bystander = enroll()
    fingerprint = fingerprint_sha256(device.certificate)
    assert keys.trust(f"devices/{device.udid}")["managed"] is True
    assert keys.trust(f"certificate/{fingerprint}")["managed"] is True

    reply = keys.post(f"/devices/{device.udid}/revoke")
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "device_id": device.udid,
        "revoked_serials": [f"{device.certificate.serial_number:x}"],
    }
    entry = runtime(app).admin.store.audit_entries(limit=1)[0]
    assert (entry.action, entry.targets, entry.outcome) == ("device.revoke", [device.udid], "ok")

    # The revoked device asks again (trust, check-ins, a renewal): unmanaged, refused, and
    # nothing it sends changes anything.
    engine = runtime(app).engine
    before = snapshot(engine)
    assert keys.trust(f"devices/{device.udid}") == {"managed": False, "compliant": False}
    assert keys.trust(f"certificate/{fingerprint}") == {"managed": False, "compliant": False}
    for request in (device.idle(), device.token_update(), device.authenticate()):
        reply = send(live_server, request)
        assert reply.status_code == 403, reply.text
    _renewal_refused(_renew(live_server, ca_cert, device.certificate, device.key))
    assert snapshot(engine) == before
    assert runtime(app).storage.enrollment(device.udid).status == EnrollmentStatus.CHECKED_OUT
    assert keys.trust(f"devices/{bystander.udid}")["managed"] is True

    crl = _crl(live_server, ca_cert)
    revoked = crl.get_revoked_certificate_by_serial_number(device.certificate.serial_number)
    assert revoked is not None
    assert crl.get_revoked_certificate_by_serial_number(bystander.certificate.serial_number) is None
    assert keys.post("/devices/NO-SUCH-DEVICE/revoke").status_code == 404


def test_revoked_device_can_enroll_again(app, live_server, enroll, tokens, ca_cert, keys):
    """Revocation ends the enrollment: the device may come back with a new identity."""
    device = enroll()
    assert keys.post(f"/devices/{device.udid}/revoke").status_code == 200
    cert, key = scep_identity(live_server, ca_cert, tokens.create().token)
    again = replace(device, certificate=cert, key=key)
    for request in (again.authenticate(), again.token_update()):
        assert send(live_server, request).status_code == 200
    assert keys.trust(f"devices/{device.udid}")["managed"] is True


def test_cli_revoke_and_allow_reenroll(app, app_config, live_server, tokens, ca_cert, keys):
    env = {"MDM_HOME": str(app_config.home), "MDM_DATABASE_URL": app_config.database_url}

    def cli(*args: str, input: str | None = None):
        return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)

    cert, key = scep_identity(live_server, ca_cert, tokens.create().token)
    device = VirtualDevice(cert, key, TEST_TOPIC, serial_number="C02CLIREVOKE")
    for request in (device.authenticate(), device.token_update()):
        assert send(live_server, request).status_code == 200

    allowed = cli("devices", "allow-reenroll", "C02CLIREVOKE", "--for", "1h", "--json")
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.output)["device_id"] == device.udid
    bad = cli("devices", "allow-reenroll", device.udid, "--for", "soon")
    assert bad.exit_code != 0 and "--for" in bad.output

    declined = cli("devices", "revoke", device.udid, input="n\n")
    assert declined.exit_code != 0
    assert keys.trust(f"devices/{device.udid}")["managed"] is True
    revoked = cli("devices", "revoke", device.udid, "--yes")
    assert revoked.exit_code == 0, revoked.output
    assert f"{cert.serial_number:x}" in revoked.output
    assert keys.trust(f"devices/{device.udid}")["managed"] is False
    assert runtime(app).admin.store.audit_entries(limit=1)[0].actor.startswith("cli:")
    missing = cli("devices", "revoke", "NOPE", "--yes")
    assert missing.exit_code != 0 and "NOPE" in missing.output


def test_scep_get_crl_answers_the_same_crl(app, live_server, enroll, ca_cert, keys, pki):
    from mdmserver.crypto.ca import generate_key
    from mdmserver.testing.enrollment import post_pki
    from mdmserver.testing.scep_client import (
        build_get_crl,
        crl_of_cert_rep,
        parse_cert_rep,
        self_signed_for_scep,
    )

    device = enroll()
    assert keys.post(f"/devices/{device.udid}/revoke").status_code == 200
    key = generate_key("rsa")
    asker = self_signed_for_scep(key, "relying party")  # the CRL is public: anyone may ask
    reply = post_pki(live_server, build_get_crl(device.certificate, asker, key, ca_cert))
    assert reply.status_code == 200, reply.text
    crl = crl_of_cert_rep(reply.content, ca_cert, key)
    assert crl.is_signature_valid(ca_cert.public_key())
    assert crl.get_revoked_certificate_by_serial_number(device.certificate.serial_number)

    foreign, _ = pki.identity("issued by another CA")
    reply = post_pki(live_server, build_get_crl(foreign, asker, key, ca_cert))
    refused = parse_cert_rep(reply.content, ca_cert, key)
    assert refused.status == PkiStatus.FAILURE and refused.fail_info == FailInfo.badCertId


def test_revoked_identity_from_another_ca_stays_refused(app_config, pki):
    """An organisation's CA (MDM_DEVICE_CA_FILES): its identities are not in our CRL, but a
    revoked one cannot enroll the device again."""
    from mdmserver.app import create_app
    from mdmserver.testing.http import serve

    other_ca_app = create_app(replace(app_config, device_ca_files=(str(pki.ca_file),)))
    rt = runtime(other_ca_app)
    try:
        with serve(other_ca_app) as url:
            device = pki.device()
            for request in (device.authenticate(), device.token_update()):
                assert send(url, request).status_code == 200
            revocation = rt.admin.identities.revoke(device.udid, actor="test")
            assert revocation.revoked_serials == []
            before = snapshot(rt.engine)
            for request in (device.authenticate(), device.token_update(), device.idle()):
                reply = send(url, request)
                assert reply.status_code == 403 and "revoked" in reply.text, reply.text
            assert snapshot(rt.engine) == before
            # A new identity from that CA may enroll the device again.
            cert, key = pki.identity("enrolled again")
            again = replace(device, certificate=cert, key=key)
            for request in (again.authenticate(), again.token_update()):
                assert send(url, request).status_code == 200
    finally:
        rt.close()
