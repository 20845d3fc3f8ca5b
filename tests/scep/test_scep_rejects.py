"""Bad PKIOperations fail with ScepError and the failInfo to answer with, never anything else."""

from __future__ import annotations

import os

import pytest
from asn1crypto import cms, core
from cryptography.hazmat.primitives import serialization

from mdmserver.scep.envelope import envelope
from mdmserver.scep.errors import FailInfo, ScepError, ScepRejected
from mdmserver.scep.message import MAX_MESSAGE_BYTES, MessageType, parse_pki_message, peek
from mdmserver.scep.signed import (
    OID_MESSAGE_TYPE,
    OID_SENDER_NONCE,
    OID_TRANSACTION_ID,
    attribute,
    sign,
)
from mdmserver.testing.scep_client import build_pkcs_req, make_csr


def _request(ca, device, **kwargs) -> tuple[bytes, str, bytes]:
    csr = make_csr(device.key, "device-1", "pw")
    return build_pkcs_req(csr, device.cert, device.key, ca.cert, **kwargs)


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def _signed(ca, device, content: bytes | None, message_type: str | None = "19", **skip) -> bytes:
    """A hand-made PKIOperation, for the shapes the client refuses to build."""
    attrs = []
    if message_type is not None:
        attrs.append(attribute(OID_MESSAGE_TYPE, core.PrintableString(message_type)))
    if not skip.get("no_transaction"):
        attrs.append(attribute(OID_TRANSACTION_ID, core.PrintableString("TX-1")))
    attrs.append(attribute(OID_SENDER_NONCE, core.OctetString(b"0123456789abcdef")))
    return sign(content, device.cert, device.key, attrs)


def test_flipped_byte_in_encrypted_content_is_bad_message_check(ca, device) -> None:
    body, transaction_id, nonce = _request(ca, device)
    signed = cms.ContentInfo.load(body)["content"]
    inner = cms.ContentInfo.load(signed["encap_content_info"]["content"].native)
    ciphertext = inner["content"]["encrypted_content_info"]["encrypted_content"].native
    tampered = _flip(body, body.index(ciphertext) + 5)

    with pytest.raises(ScepRejected) as caught:
        parse_pki_message(tampered, ca.cert, ca.key)
    assert caught.value.fail_info is FailInfo.badMessageCheck
    assert "messageDigest" in str(caught.value)
    # The transaction is still known, so a FAILURE CertRep can answer it.
    assert caught.value.transaction.transaction_id == transaction_id
    assert caught.value.transaction.sender_nonce == nonce


def test_flipped_byte_in_signature_is_bad_message_check(ca, device) -> None:
    body, _, _ = _request(ca, device)
    tampered = _flip(body, len(body) - 1)  # the signature is the last field of the message
    with pytest.raises(ScepError) as caught:
        parse_pki_message(tampered, ca.cert, ca.key)
    assert caught.value.fail_info is FailInfo.badMessageCheck
    assert "signature" in str(caught.value)
    with pytest.raises(ScepError):
        peek(tampered)


def test_request_encrypted_to_another_ca_is_refused(ca, other_ca, device) -> None:
    body, _, _ = _request(other_ca, device)
    assert peek(body).message_type is MessageType.PKCSReq  # the outer layer is fine
    with pytest.raises(ScepRejected, match="not encrypted to this CA") as caught:
        parse_pki_message(body, ca.cert, ca.key)
    assert caught.value.fail_info is FailInfo.badMessageCheck


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage", b"\x30\x80", b"\x30\x03\x02\x01", os.urandom(2048)],
    ids=["empty", "text", "indefinite-open", "truncated", "random"],
)
def test_garbage_is_scep_error_without_transaction(ca, data) -> None:
    with pytest.raises(ScepError) as caught:
        parse_pki_message(data, ca.cert, ca.key)
    assert not isinstance(caught.value, ScepRejected)  # nobody to answer: HTTP 400
    assert caught.value.fail_info is FailInfo.badRequest


def test_truncated_request_is_scep_error(ca, device) -> None:
    body, _, _ = _request(ca, device)
    for cut in (10, len(body) // 2, len(body) - 1):
        with pytest.raises(ScepError):
            parse_pki_message(body[:cut], ca.cert, ca.key)


def test_oversized_request_is_refused_before_parsing(ca, device) -> None:
    body, _, _ = _request(ca, device)
    with pytest.raises(ScepError, match="bytes") as caught:
        parse_pki_message(body + b"\0" * MAX_MESSAGE_BYTES, ca.cert, ca.key)
    assert not isinstance(caught.value, ScepRejected)


def test_deeply_nested_input_is_scep_error(ca) -> None:
    nested = b"\x30\x80" * 50_000 + b"\x00\x00" * 50_000
    with pytest.raises(ScepError):
        parse_pki_message(nested, ca.cert, ca.key)


def test_missing_transaction_id_is_plain_scep_error(ca, device) -> None:
    data = _signed(ca, device, b"irrelevant", no_transaction=True)
    with pytest.raises(ScepError, match="transactionID") as caught:
        peek(data)
    assert not isinstance(caught.value, ScepRejected)


def test_cert_poll_is_answered_bad_cert_id(ca, device) -> None:
    data = _signed(ca, device, b"issuer and subject", message_type="20")
    assert peek(data).message_type is MessageType.CertPoll
    with pytest.raises(ScepRejected) as caught:
        parse_pki_message(data, ca.cert, ca.key)
    assert caught.value.fail_info is FailInfo.badCertId
    assert caught.value.transaction.transaction_id == "TX-1"


@pytest.mark.parametrize("message_type", ["99", "nineteen", None])
def test_unknown_or_missing_message_type_is_bad_request(ca, device, message_type) -> None:
    data = _signed(ca, device, b"x", message_type=message_type)
    with pytest.raises(ScepRejected) as caught:
        parse_pki_message(data, ca.cert, ca.key)
    assert caught.value.fail_info is FailInfo.badRequest


def test_csr_with_broken_self_signature_is_bad_message_check(ca, device) -> None:
    csr_der = make_csr(device.key, "device-1", "pw").public_bytes(serialization.Encoding.DER)
    broken = _flip(csr_der, len(csr_der) - 1)
    data = _signed(ca, device, envelope(broken, ca.cert, "aes128"))
    with pytest.raises(ScepRejected, match="self-signature") as caught:
        parse_pki_message(data, ca.cert, ca.key)
    assert caught.value.fail_info is FailInfo.badMessageCheck


def test_enveloped_non_csr_reads_as_undecryptable(ca, device) -> None:
    data = _signed(ca, device, envelope(b"not a CSR at all", ca.cert, "aes256"))
    with pytest.raises(ScepRejected, match="could not be decrypted") as caught:
        parse_pki_message(data, ca.cert, ca.key)
    assert caught.value.fail_info is FailInfo.badMessageCheck


def test_signed_content_that_is_not_enveloped_is_bad_request(ca, device) -> None:
    data = _signed(ca, device, b"\x30\x03\x02\x01\x01")
    with pytest.raises(ScepRejected) as caught:
        parse_pki_message(data, ca.cert, ca.key)
    assert caught.value.fail_info is FailInfo.badRequest


def test_any_single_byte_corruption_raises_only_scep_error(ca, device) -> None:
    body, _, _ = _request(ca, device, encryption="aes256")
    outcomes: set[str] = set()
    for offset in range(0, len(body), 3):
        for mask in (0x01, 0xFF):
            try:
                parse_pki_message(_flip_with(body, offset, mask), ca.cert, ca.key)
                outcomes.add("accepted")
            except ScepError as exc:  # anything else fails the test
                outcomes.add(exc.fail_info.name)
    # Only unsigned, meaningless bytes (versions, NULL parameters) may change unnoticed.
    assert {"badMessageCheck", "badRequest"} <= outcomes


def _flip_with(data: bytes, offset: int, mask: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ mask]) + data[offset + 1 :]


def test_corrupt_self_signed_signer_certificate_is_bad_message_check(ca, device) -> None:
    body, _, _ = _request(ca, device)
    cert_der = device.cert.public_bytes(serialization.Encoding.DER)
    last_signature_byte = body.index(cert_der) + len(cert_der) - 1
    with pytest.raises(ScepRejected, match="self-signed") as caught:
        peek(_flip(body, last_signature_byte))
    assert caught.value.fail_info is FailInfo.badMessageCheck


def test_unprintable_transaction_id_is_refused(ca, device) -> None:
    attrs = [
        attribute(OID_MESSAGE_TYPE, core.PrintableString("19")),
        attribute(OID_TRANSACTION_ID, core.UTF8String("tx-\u00e9\n")),
        attribute(OID_SENDER_NONCE, core.OctetString(b"0123456789abcdef")),
    ]
    with pytest.raises(ScepError, match="transactionID") as caught:
        peek(sign(b"x", device.cert, device.key, attrs))
    assert not isinstance(caught.value, ScepRejected)


def test_md5_signature_is_bad_alg(ca, device) -> None:
    body, transaction_id, _ = _request(ca, device)
    info = cms.ContentInfo.load(body)
    info["content"]["signer_infos"][0]["digest_algorithm"] = {"algorithm": "md5"}
    with pytest.raises(ScepRejected) as caught:
        parse_pki_message(info.dump(force=True), ca.cert, ca.key)
    assert caught.value.fail_info is FailInfo.badAlg
    # The answer is then signed with SHA-256, not with what the client asked for.
    assert caught.value.transaction.digest_algorithm == "sha256"
    assert caught.value.transaction.transaction_id == transaction_id
