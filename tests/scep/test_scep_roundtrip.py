"""A device asks for a certificate and gets it: PKCSReq and RenewalReq through to CertRep."""

from __future__ import annotations

import pytest
from asn1crypto import cms, core
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mdmserver.scep.errors import FailInfo, ScepRejected
from mdmserver.scep.message import (
    MessageType,
    PkiStatus,
    build_cert_rep_failure,
    build_cert_rep_success,
    parse_pki_message,
    peek,
)
from mdmserver.testing.scep_client import build_pkcs_req, make_csr, parse_cert_rep


def _spki(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_pkcs_req_round_trip_delivers_certificate_for_device_key(ca, device, issue) -> None:
    csr = make_csr(device.key, "device-1", "s3cret-challenge")
    body, transaction_id, nonce = build_pkcs_req(csr, device.cert, device.key, ca.cert)

    req = parse_pki_message(body, ca.cert, ca.key)
    assert req.message_type is MessageType.PKCSReq
    assert req.transaction_id == transaction_id
    assert req.sender_nonce == nonce
    assert req.challenge == "s3cret-challenge"
    assert req.signer_cert == device.cert
    assert req.csr.subject == csr.subject
    assert req.content_encryption == "aes128"
    assert req.digest_algorithm == "sha256"

    issued = issue(req.csr)
    reply = build_cert_rep_success(req, issued, ca.cert, ca.key)
    result = parse_cert_rep(
        reply, ca.cert, device.key, transaction_id=transaction_id, sender_nonce=nonce
    )
    assert result.status is PkiStatus.SUCCESS
    assert result.fail_info is None
    assert result.certificate == issued
    assert _spki(result.certificate.public_key()) == _spki(device.key.public_key())
    assert result.certificate.issuer == ca.cert.subject


@pytest.mark.parametrize("encryption", ["aes128", "aes192", "aes256", "des3", "des"])
def test_every_client_content_encryption_decrypts(ca, device, issue, encryption) -> None:
    csr = make_csr(device.key, "device-1", "pw")
    body, _, nonce = build_pkcs_req(csr, device.cert, device.key, ca.cert, encryption=encryption)

    req = parse_pki_message(body, ca.cert, ca.key)
    assert req.content_encryption == encryption
    assert req.challenge == "pw"

    # The answer is encrypted the way the device asked, so it can read it back.
    result = parse_cert_rep(
        build_cert_rep_success(req, issue(req.csr), ca.cert, ca.key),
        ca.cert,
        device.key,
        sender_nonce=nonce,
    )
    assert result.status is PkiStatus.SUCCESS
    assert result.content_encryption == encryption


def test_reply_encryption_can_be_chosen(ca, device, issue) -> None:
    csr = make_csr(device.key, "device-1", "pw")
    body, _, _ = build_pkcs_req(csr, device.cert, device.key, ca.cert, encryption="des3")
    req = parse_pki_message(body, ca.cert, ca.key)
    reply = build_cert_rep_success(req, issue(req.csr), ca.cert, ca.key, encryption="aes256")
    assert parse_cert_rep(reply, ca.cert, device.key).content_encryption == "aes256"


@pytest.mark.parametrize("digest", ["sha1", "sha256", "sha512"])
def test_signature_digests_accepted_and_mirrored(ca, device, issue, digest) -> None:
    csr = make_csr(device.key, "device-1", "pw")
    body, _, _ = build_pkcs_req(csr, device.cert, device.key, ca.cert, digest=digest)
    req = parse_pki_message(body, ca.cert, ca.key)
    assert req.digest_algorithm == digest
    reply = build_cert_rep_success(req, issue(req.csr), ca.cert, ca.key)
    assert peek_digest(reply) == digest
    assert parse_cert_rep(reply, ca.cert, device.key).status is PkiStatus.SUCCESS


def peek_digest(der: bytes) -> str:
    info = cms.ContentInfo.load(der)
    return info["content"]["signer_infos"][0]["digest_algorithm"]["algorithm"].native


def test_printable_string_challenge_and_no_challenge(ca, device) -> None:
    csr = make_csr(device.key, "device-1", "ABC123", printable_challenge=True)
    body, _, _ = build_pkcs_req(csr, device.cert, device.key, ca.cert)
    assert parse_pki_message(body, ca.cert, ca.key).challenge == "ABC123"

    csr = make_csr(device.key, "device-1", None)
    body, _, _ = build_pkcs_req(csr, device.cert, device.key, ca.cert)
    assert parse_pki_message(body, ca.cert, ca.key).challenge is None


def test_renewal_signed_by_existing_certificate_exposes_it(ca, device, issue) -> None:
    current = issue(make_csr(device.key, "device-1", None))
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = make_csr(new_key, "device-1", None)
    body, transaction_id, nonce = build_pkcs_req(
        csr, current, device.key, ca.cert, message_type=MessageType.RenewalReq
    )

    header = peek(body)
    assert header.message_type is MessageType.RenewalReq
    req = parse_pki_message(body, ca.cert, ca.key)
    assert req.message_type is MessageType.RenewalReq
    assert req.signer_cert == current
    assert req.signer_cert.issuer == ca.cert.subject  # the caller's "did we issue it" check
    assert req.challenge is None

    renewed = issue(req.csr)
    # The renewed certificate goes back encrypted to the certificate that signed the request.
    result = parse_cert_rep(
        build_cert_rep_success(req, renewed, ca.cert, ca.key),
        ca.cert,
        device.key,
        transaction_id=transaction_id,
        sender_nonce=nonce,
    )
    assert result.certificate is not None
    assert _spki(result.certificate.public_key()) == _spki(new_key.public_key())


@pytest.mark.parametrize("fail_info", list(FailInfo))
def test_failure_cert_rep_carries_fail_info(ca, device, fail_info) -> None:
    csr = make_csr(device.key, "device-1", "wrong")
    body, transaction_id, nonce = build_pkcs_req(csr, device.cert, device.key, ca.cert)
    req = parse_pki_message(body, ca.cert, ca.key)

    reply = build_cert_rep_failure(req, fail_info, ca.cert, ca.key)
    result = parse_cert_rep(
        reply, ca.cert, device.key, transaction_id=transaction_id, sender_nonce=nonce
    )
    assert result.status is PkiStatus.FAILURE
    assert result.fail_info is fail_info
    assert result.certificate is None
    assert result.transaction_id == transaction_id
    assert result.recipient_nonce == nonce


def test_rejection_carries_what_the_failure_reply_needs(ca, other_ca, device) -> None:
    csr = make_csr(device.key, "device-1", "pw")
    body, transaction_id, nonce = build_pkcs_req(csr, device.cert, device.key, other_ca.cert)
    with pytest.raises(ScepRejected) as caught:
        parse_pki_message(body, ca.cert, ca.key)

    reply = build_cert_rep_failure(
        caught.value.transaction, caught.value.fail_info, ca.cert, ca.key
    )
    result = parse_cert_rep(
        reply, ca.cert, device.key, transaction_id=transaction_id, sender_nonce=nonce
    )
    assert result.status is PkiStatus.FAILURE
    assert result.fail_info is FailInfo.badMessageCheck


def test_client_refuses_reply_for_another_transaction(ca, device) -> None:
    csr = make_csr(device.key, "device-1", "pw")
    body, _, nonce = build_pkcs_req(csr, device.cert, device.key, ca.cert)
    req = parse_pki_message(body, ca.cert, ca.key)
    reply = build_cert_rep_failure(req, FailInfo.badRequest, ca.cert, ca.key)
    with pytest.raises(ValueError, match="nonce"):
        parse_cert_rep(reply, ca.cert, device.key, sender_nonce=b"another nonce")
    with pytest.raises(ValueError, match="transaction"):
        parse_cert_rep(reply, ca.cert, device.key, transaction_id="OTHER", sender_nonce=nonce)


def _indefinite(tag: int, *parts: bytes) -> bytes:
    return bytes([tag, 0x80]) + b"".join(parts) + b"\x00\x00"


def _as_ber(der: bytes) -> bytes:
    """Re-encode the outer layers with indefinite lengths and a chunked eContent, as streaming
    CMS encoders (and devices) do; signed attributes and certificates stay DER, as they must."""
    signed = cms.ContentInfo.load(der)["content"]
    content = signed["encap_content_info"]["content"].native
    chunks = [core.OctetString(content[i : i + 500]).dump() for i in range(0, len(content), 500)]
    encap = _indefinite(
        0x30,
        core.ObjectIdentifier("1.2.840.113549.1.7.1").dump(),
        _indefinite(0xA0, _indefinite(0x24, *chunks)),
    )
    signed_data = _indefinite(
        0x30,
        signed["version"].dump(),
        signed["digest_algorithms"].dump(),
        encap,
        signed["certificates"].dump(),
        signed["signer_infos"].dump(),
    )
    return _indefinite(
        0x30,
        core.ObjectIdentifier("1.2.840.113549.1.7.2").dump(),
        _indefinite(0xA0, signed_data),
    )


def test_ber_indefinite_length_request_is_read(ca, device) -> None:
    csr = make_csr(device.key, "device-1", "pw")
    body, transaction_id, _ = build_pkcs_req(csr, device.cert, device.key, ca.cert)
    ber = _as_ber(body)
    assert ber[:2] == b"\x30\x80"  # indefinite length
    req = parse_pki_message(ber, ca.cert, ca.key)
    assert req.transaction_id == transaction_id
    assert req.challenge == "pw"
