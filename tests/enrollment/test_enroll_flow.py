"""A device enrolls end to end over HTTP: token → profile → SCEP → Authenticate → Idle."""

from __future__ import annotations

import base64
import subprocess

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from mdmserver.catalog.validate import validate_payload, validate_profile
from mdmserver.crypto.ca import fingerprint_sha256
from mdmserver.testing.device import VirtualDevice
from mdmserver.testing.enrollment import payload, scep_challenge, scep_request, unwrap_profile
from mdmserver.testing.http import send
from mdmserver.testing.pki import TEST_TOPIC
from mdmserver.testing.scep_client import build_pkcs_req, make_csr, parse_cert_rep

SERVER_URL = "https://mdm.example.test"  # what conftest's init wrote to config.toml


def _profile(live_server: str, token: str) -> requests.Response:
    return requests.get(f"{live_server}/mdm/enroll", params={"token": token}, timeout=30)


def test_device_enrolls_end_to_end_and_is_tagged(live_server, tokens, enrollment, ca_cert):
    new = tokens.create(uses=1, tags=["sales", "ipads"])
    reply = _profile(live_server, new.token)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"] == "application/x-apple-aspen-config"

    profile = unwrap_profile(reply.content)
    scep = payload(profile, "com.apple.security.scep")
    attempt = scep_request(live_server, ca_cert, scep_challenge(profile))
    assert attempt.response.headers["Content-Type"] == "application/x-pki-message"
    cert = attempt.certificate
    assert cert.issuer == ca_cert.subject
    assert cert.public_key().public_numbers() == attempt.key.public_key().public_numbers()
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    record = enrollment.store.issued(fingerprint_sha256(cert))
    assert record is not None and record.token_id == new.info.id and record.device_id is None
    assert scep["PayloadContent"]["URL"] == f"{SERVER_URL}/scep"

    device = VirtualDevice(certificate=cert, key=attempt.key, topic=TEST_TOPIC)
    for request in (device.authenticate(), device.token_update(), device.idle()):
        answer = send(live_server, request)
        assert answer.status_code == 200, answer.text
    assert enrollment.store.device_tags(device.udid) == ["ipads", "sales"]
    assert enrollment.store.issued(fingerprint_sha256(cert)).device_id == device.udid
    assert [t.uses for t in tokens.list()] == [1]


def test_profile_payloads_follow_apple_schema(live_server, tokens, ca_cert):
    profile = unwrap_profile(_profile(live_server, tokens.create().token).content)
    assert [e for e in validate_profile(profile) if e.severity == "error"] == []
    for item in profile["PayloadContent"]:
        findings = validate_payload(item["PayloadType"], item)
        assert [e for e in findings if e.severity == "error"] == []
    root = payload(profile, "com.apple.security.root")
    assert x509.load_der_x509_certificate(root["PayloadContent"]) == ca_cert
    scep = payload(profile, "com.apple.security.scep")["PayloadContent"]
    assert (scep["Keysize"], scep["Key Type"], scep["Key Usage"]) == (2048, "RSA", 5)
    mdm = payload(profile, "com.apple.mdm")
    assert mdm["ServerURL"] == f"{SERVER_URL}/mdm/connect"
    assert mdm["CheckInURL"] == f"{SERVER_URL}/mdm/checkin"
    assert mdm["Topic"] == TEST_TOPIC
    assert (
        mdm["IdentityCertificateUUID"] == payload(profile, "com.apple.security.scep")["PayloadUUID"]
    )
    assert mdm["SignMessage"] is True and mdm["CheckOutWhenRemoved"] is True
    assert mdm["AccessRights"] == 8191
    assert mdm["ServerCapabilities"] == [
        "com.apple.mdm.per-user-connections",
        "com.apple.mdm.bootstraptoken",
    ]


def test_profile_verifies_with_openssl(live_server, tokens, enroll_home, tmp_path):
    signed = tmp_path / "enroll.mobileconfig"
    signed.write_bytes(_profile(live_server, tokens.create().token).content)
    out = subprocess.run(
        [
            "openssl", "cms", "-verify", "-inform", "DER", "-in", str(signed),
            "-CAfile", str(enroll_home / "ca.pem"), "-purpose", "any",
        ],
        capture_output=True,
        check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr.decode()
    assert b"Verification successful" in out.stderr
    assert b"com.apple.mdm" in out.stdout


@pytest.mark.parametrize("purpose", [None, "smimesign"])
def test_profile_verifies_with_openssl_default_purpose(
    live_server, tokens, enroll_home, tmp_path, purpose
):
    """Without -purpose openssl checks S/MIME signing: the signer must pass that too."""
    signed = tmp_path / "enroll.mobileconfig"
    signed.write_bytes(_profile(live_server, tokens.create().token).content)
    command = ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(signed)]
    command += ["-CAfile", str(enroll_home / "ca.pem"), "-out", str(tmp_path / "out.plist")]
    if purpose:
        command += ["-purpose", purpose]
    out = subprocess.run(command, capture_output=True, check=False)
    assert out.returncode == 0, out.stderr.decode()


def test_scep_get_operations(live_server, ca_cert):
    caps = requests.get(f"{live_server}/scep", params={"operation": "GetCACaps"}, timeout=30)
    assert caps.status_code == 200
    assert {"POSTPKIOperation", "Renewal", "SHA-256", "AES"} <= set(caps.text.split())
    cert = requests.get(f"{live_server}/scep", params={"operation": "GetCACert"}, timeout=30)
    assert cert.headers["Content-Type"] == "application/x-x509-ca-cert"
    assert x509.load_der_x509_certificate(cert.content) == ca_cert
    unknown = requests.get(f"{live_server}/scep", params={"operation": "Nope"}, timeout=30)
    assert unknown.status_code == 400


def test_pki_operation_by_get(live_server, tokens, enrollment, ca_cert):
    from mdmserver.crypto.ca import generate_key
    from mdmserver.testing.scep_client import self_signed_for_scep

    challenge = enrollment.profiles.new_challenge(token_id=tokens.create().info.id)
    key = generate_key("rsa")
    csr = make_csr(key, "by-get", challenge)
    body, transaction_id, nonce = build_pkcs_req(
        csr, self_signed_for_scep(key, "by-get"), key, ca_cert
    )
    reply = requests.get(
        f"{live_server}/scep",
        params={"operation": "PKIOperation", "message": base64.b64encode(body).decode()},
        timeout=30,
    )
    assert reply.status_code == 200
    result = parse_cert_rep(
        reply.content, ca_cert, key, transaction_id=transaction_id, sender_nonce=nonce
    )
    assert result.certificate is not None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert result.certificate.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ) == key.public_key().public_bytes(serialization.Encoding.DER, spki)


def test_uninitialised_instance_answers_503(tmp_path, database_url, pki):
    from mdmserver.app import create_app
    from mdmserver.config import load_config
    from mdmserver.testing.http import serve
    from mdmserver.web.runtime import runtime

    config = load_config(
        environ={},
        overrides={
            "home": tmp_path / "bare",
            "database_url": database_url,
            "ca_cert_file": str(pki.ca_file),
            "log_level": "ERROR",
        },
    )
    app = create_app(config)
    with serve(app) as url:
        reply = requests.get(f"{url}/mdm/enroll", params={"token": "x"}, timeout=30)
        assert reply.status_code == 503
        reply = requests.get(f"{url}/scep", params={"operation": "GetCACert"}, timeout=30)
        assert reply.status_code == 503 and "mdmserver init" in reply.text
    runtime(app).close()
