"""A PKIOperation captured from Apple's mdmclient, encrypted to a CA whose key we do not have."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from mdmserver.scep.errors import FailInfo, ScepError, ScepRejected
from mdmserver.scep.message import MessageType, build_cert_rep_failure, parse_pki_message, peek
from mdmserver.testing.scep_client import parse_cert_rep

pytestmark = pytest.mark.shared


@pytest.fixture
def capture(fixtures_dir) -> bytes:
    return (fixtures_dir / "mdmclient-PKIOperation.der").read_bytes()


def test_peek_reads_the_verified_outer_layer(capture) -> None:
    header = peek(capture)
    assert header.message_type is MessageType.PKCSReq
    assert header.transaction_id == "140BC832976B3D0300BE8F5C2E35CEDF66E73D7B"
    assert header.sender_nonce == bytes.fromhex("fac5e2eda5d97d64")  # 8 bytes, not RFC's 16
    assert header.digest_algorithm == "sha512"
    assert header.signing_time == datetime(2017, 4, 6, 2, 28, 50, tzinfo=UTC)
    signer = header.signer_cert
    assert signer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "MDM SCEP SIGNER"
    assert signer.subject == signer.issuer  # the self-signed throwaway of RFC 8894 2.3
    assert signer.serial_number == 1
    assert signer.fingerprint(hashes.SHA256()).hex() == (
        "befa49fc3f3cb721b7dc9f671fc946743315b25a9efdaf79a7f0b32f4596bbd0"
    )


def test_capture_is_not_for_our_ca(capture, ca, device) -> None:
    with pytest.raises(ScepRejected, match="not encrypted to this CA") as caught:
        parse_pki_message(capture, ca.cert, ca.key)
    assert caught.value.fail_info is FailInfo.badMessageCheck

    # The failure answer mirrors the device's SHA-512 and echoes its 8-byte nonce.
    reply = build_cert_rep_failure(caught.value.transaction, FailInfo.badRequest, ca.cert, ca.key)
    result = parse_cert_rep(
        reply,
        ca.cert,
        device.key,
        transaction_id="140BC832976B3D0300BE8F5C2E35CEDF66E73D7B",
        sender_nonce=bytes.fromhex("fac5e2eda5d97d64"),
    )
    assert result.fail_info is FailInfo.badRequest


def test_tampered_capture_fails_its_message_digest(capture) -> None:
    offset = capture.index(bytes.fromhex("f937ffd5918cb48a"))  # inside the 3DES ciphertext
    tampered = capture[:offset] + b"\x00" + capture[offset + 1 :]
    with pytest.raises(ScepError) as caught:
        peek(tampered)
    assert caught.value.fail_info is FailInfo.badMessageCheck
