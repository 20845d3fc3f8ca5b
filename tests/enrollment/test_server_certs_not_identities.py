"""The instance's own certificates are not device identities (issue 12 item 4).

`mdmserver init` signs the TLS and profile-signing certificates with the device CA, so they
chain to it; the CA certificate is trusted as an anchor. None of them may Authenticate as a
device, nor may any certificate of our CA that our SCEP server did not record as a device
identity. Each attempt names an enrolled victim and must change nothing: device row, binding,
its queued DeviceLock, the trust answer.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from mdmserver.crypto.ca import (
    generate_key,
    issue_certificate,
    load_pem_certificates,
    load_private_key,
)
from mdmserver.protocol.commands import new_command
from mdmserver.testing.device import VirtualDevice
from mdmserver.testing.enrollment import scep_challenge, scep_request, unwrap_profile
from mdmserver.testing.http import send, snapshot
from mdmserver.testing.pki import TEST_TOPIC
from mdmserver.web.runtime import runtime


def _scep_device(live_server, tokens, ca_cert) -> VirtualDevice:
    import requests

    reply = requests.get(
        f"{live_server}/mdm/enroll", params={"token": tokens.create().token}, timeout=30
    )
    attempt = scep_request(live_server, ca_cert, scep_challenge(unwrap_profile(reply.content)))
    return VirtualDevice(certificate=attempt.certificate, key=attempt.key, topic=TEST_TOPIC)


@pytest.fixture
def victim(app, live_server, tokens, ca_cert) -> VirtualDevice:
    device = _scep_device(live_server, tokens, ca_cert)
    for request in (device.authenticate(), device.token_update()):
        assert send(live_server, request).status_code == 200
    runtime(app).storage.enqueue(new_command("DeviceLock"), [device.udid])
    return device


def _impostor(enroll_home, cert_file: str, key_file: str, victim: VirtualDevice):
    cert = load_pem_certificates((enroll_home / cert_file).read_bytes())[0]
    key = load_private_key((enroll_home / key_file).read_bytes())
    return VirtualDevice(
        certificate=cert,
        key=key,
        topic=TEST_TOPIC,
        udid=victim.udid,
        serial_number=victim.serial_number,
    )


@pytest.mark.parametrize(
    ("cert_file", "key_file", "why"),
    [
        ("tls.pem", "tls.key", "does not include clientAuth"),
        ("signing.pem", "signing.key", "no extendedKeyUsage clientAuth"),
        ("ca.pem", "ca.key", "CA certificate"),
    ],
    ids=["tls", "signing", "ca"],
)
def test_instance_certificates_cannot_speak_for_a_device(
    app, live_server, enroll_home, victim, cert_file, key_file, why
):
    engine = runtime(app).engine
    impostor = _impostor(enroll_home, cert_file, key_file, victim)
    before = snapshot(engine)
    for request in (impostor.authenticate(), impostor.token_update(), impostor.idle()):
        reply = send(live_server, request)
        assert reply.status_code == 403, reply.text
        assert why in reply.text
    assert snapshot(engine) == before
    # The victim keeps its binding and its DeviceLock.
    assert send(live_server, victim.idle()).status_code == 200
    assert "DeviceLock" in [i.request_type for i in runtime(app).storage.queue(victim.udid)]


def test_a_client_certificate_of_our_ca_not_issued_by_scep_is_refused(
    app, live_server, enroll_home, victim
):
    """Even a leaf with clientAuth (say, minted for another service with the CA key) is not a
    device identity unless our SCEP server recorded it as one."""
    ca_cert = load_pem_certificates((enroll_home / "ca.pem").read_bytes())[0]
    ca_key = load_private_key((enroll_home / "ca.key").read_bytes())
    key = generate_key()
    cert = issue_certificate(
        ca_cert,
        ca_key,
        key.public_key(),
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vpn client")]),
        lifetime=timedelta(days=30),
        client_auth=True,
    )
    other = VirtualDevice(certificate=cert, key=key, topic=TEST_TOPIC, udid=victim.udid)
    before = snapshot(runtime(app).engine)
    reply = send(live_server, other.authenticate())
    assert reply.status_code == 403
    assert "not issued by this server's SCEP service" in reply.text
    assert snapshot(runtime(app).engine) == before


def test_a_scep_identity_still_enrolls(app, live_server, tokens, ca_cert):
    device = _scep_device(live_server, tokens, ca_cert)
    for request in (device.authenticate(), device.token_update(), device.idle()):
        assert send(live_server, request).status_code == 200
