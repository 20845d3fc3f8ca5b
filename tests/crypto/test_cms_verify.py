"""Mdm-Signature verification: what devices send is accepted, anything else is refused clearly."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from asn1crypto import cms, parser
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import pkcs7

from mdmserver.crypto.ca import PrivateKey, dump_cert_pem, dump_key_pem
from mdmserver.crypto.cms_sign import sign_detached
from mdmserver.crypto.cms_verify import (
    MAX_SIGNATURE_BYTES,
    cache_info,
    verify_detached,
    verify_mdm_signature,
)
from mdmserver.crypto.errors import SignatureError

Identity = tuple[x509.Certificate, PrivateKey]

BODY = b"<?xml version='1.0'?><plist><dict><key>Status</key><string>Idle</string></dict></plist>"


@pytest.mark.parametrize("digest", ["sha1", "sha256", "sha384", "sha512"])
@pytest.mark.parametrize("attributes", [True, False], ids=["attrs", "no-attrs"])
def test_accepts_each_digest_key_type_and_attribute_form(
    device: Identity, digest: str, attributes: bool
) -> None:
    cert, key = device
    signature = sign_detached(BODY, cert, key, signed_attributes=attributes, digest=digest)
    assert verify_detached(signature, BODY) == cert


@pytest.mark.parametrize("attributes", [True, False], ids=["attrs", "no-attrs"])
@pytest.mark.parametrize("chunk", [0, 50], ids=["indefinite", "indefinite+segmented"])
def test_accepts_ber_indefinite_length_encoding(
    device: Identity, to_ber: Callable[..., bytes], attributes: bool, chunk: int
) -> None:
    cert, key = device
    der = sign_detached(BODY, cert, key, signed_attributes=attributes, digest="sha1")
    ber = to_ber(der, chunk)
    assert ber[:2] == b"\x30\x80" and ber != der
    assert verify_detached(ber, BODY) == cert
    with pytest.raises(SignatureError):
        verify_detached(ber, BODY + b" ")


def test_header_base64_tolerates_line_breaks(device_rsa: Identity) -> None:
    cert, key = device_rsa
    encoded = base64.b64encode(sign_detached(BODY, cert, key)).decode()
    folded = "\n ".join(encoded[i : i + 64] for i in range(0, len(encoded), 64))
    assert verify_mdm_signature(f"  {folded}\r\n", BODY) == cert


def test_accepts_openssl_streamed_ber_signature(device_rsa: Identity, tmp_path: Path) -> None:
    """An independent signer: `openssl cms -sign -stream` emits BER with indefinite lengths."""
    cert, key = device_rsa
    (tmp_path / "body").write_bytes(BODY)
    (tmp_path / "cert.pem").write_bytes(dump_cert_pem(cert))
    (tmp_path / "key.pem").write_bytes(dump_key_pem(key))
    out = tmp_path / "sig.der"
    subprocess.run(
        ["openssl", "cms", "-sign", "-binary", "-stream", "-md", "sha1", "-outform", "DER",
         "-in", tmp_path / "body", "-signer", tmp_path / "cert.pem",
         "-inkey", tmp_path / "key.pem", "-out", out],
        check=True,
        capture_output=True,
    )  # fmt: skip
    signature = out.read_bytes()
    assert signature[:2] == b"\x30\x80"
    assert verify_detached(signature, BODY) == cert


def test_accepts_cryptography_builder_output_with_pss(device_rsa: Identity) -> None:
    cert, key = device_rsa
    pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
    signature = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(BODY)
        .add_signer(cert, key, hashes.SHA256(), rsa_padding=pss)
        .sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
        )
    )
    assert verify_detached(signature, BODY) == cert
    with pytest.raises(SignatureError, match="messageDigest"):
        verify_detached(signature, BODY + b"!")


def test_accepts_subject_key_identifier_signer(
    device: Identity, build_cms: Callable[..., bytes]
) -> None:
    cert, key = device
    signature = build_cms(cert, key, attributes=None, content=BODY, sid="ski")
    assert verify_detached(signature, BODY) == cert


@pytest.mark.shared
def test_accepts_a_real_device_scep_message(
    fixtures_dir: Path, to_ber: Callable[..., bytes]
) -> None:
    """mdmclient's PKIOperation: SHA-512 digest, rsaEncryption, signed attributes, attached."""
    der = (fixtures_dir / "mdmclient-PKIOperation.der").read_bytes()
    content = cms.ContentInfo.load(der)["content"]["encap_content_info"]["content"].native
    for encoded in (der, to_ber(der, 100)):
        cert = verify_detached(encoded, content)
        assert cert.subject.rfc4514_string() == "C=AU,CN=MDM SCEP SIGNER"
    with pytest.raises(SignatureError, match="differs from the body"):
        verify_detached(der, content[:-1])


@pytest.mark.parametrize("attributes", [True, False], ids=["attrs", "no-attrs"])
def test_refuses_signature_over_another_body(device: Identity, attributes: bool) -> None:
    cert, key = device
    signature = sign_detached(b"body A", cert, key, signed_attributes=attributes)
    expected = "messageDigest" if attributes else "signature over the body does not verify"
    with pytest.raises(SignatureError, match=expected):
        verify_detached(signature, b"body B")


def test_cached_signature_is_still_checked_against_each_body(device_rsa: Identity) -> None:
    cert, key = device_rsa
    for attributes in (True, False):
        signature = sign_detached(BODY, cert, key, signed_attributes=attributes)
        assert verify_detached(signature, BODY) == cert
        with pytest.raises(SignatureError):
            verify_detached(signature, BODY.replace(b"Idle", b"Iddd"))


@pytest.mark.parametrize("attributes", [True, False], ids=["attrs", "no-attrs"])
def test_refuses_tampered_signature_bytes(device: Identity, attributes: bool) -> None:
    cert, key = device
    signature = bytearray(sign_detached(BODY, cert, key, signed_attributes=attributes))
    signature[-5] ^= 0x01  # the SignerInfo's signature value ends the structure
    with pytest.raises(SignatureError, match="does not verify"):
        verify_detached(bytes(signature), BODY)


def test_refuses_valid_signature_over_attributes_with_wrong_digest(
    device: Identity, build_cms: Callable[..., bytes]
) -> None:
    """The signature over the attributes is genuine; only the messageDigest check can refuse."""
    cert, key = device
    good = [("content_type", "data"), ("message_digest", hashlib.sha256(BODY).digest())]
    assert verify_detached(build_cms(cert, key, attributes=good), BODY) == cert
    wrong = [("content_type", "data"), ("message_digest", hashlib.sha256(b"other").digest())]
    signature = build_cms(cert, key, attributes=wrong)
    with pytest.raises(SignatureError, match="messageDigest attribute does not match"):
        verify_detached(signature, BODY)


def test_refuses_attributes_with_wrong_content_type_or_missing_digest(
    device_rsa: Identity, build_cms: Callable[..., bytes]
) -> None:
    cert, key = device_rsa
    digest = hashlib.sha256(BODY).digest()
    wrong_type = [("content_type", "signed_data"), ("message_digest", digest)]
    with pytest.raises(
        SignatureError, match=r"contentType attribute is 1\.2\.840\.113549\.1\.7\.2,"
    ):
        verify_detached(build_cms(cert, key, attributes=wrong_type), BODY)
    with pytest.raises(SignatureError, match="lack contentType or messageDigest"):
        verify_detached(build_cms(cert, key, attributes=[("content_type", "data")]), BODY)
    short = [("content_type", "data"), ("message_digest", digest[:20])]
    with pytest.raises(SignatureError, match="has 20 bytes; a SHA-256 digest has 32"):
        verify_detached(build_cms(cert, key, attributes=short), BODY)


def test_refuses_missing_or_mismatched_signer_certificate(
    device_rsa: Identity, device_ec: Identity, build_cms: Callable[..., bytes]
) -> None:
    cert, key = device_rsa
    with pytest.raises(SignatureError, match="embeds no certificate"):
        verify_detached(build_cms(cert, key, attributes=None, content=BODY, certificates=[]), BODY)
    other_only = build_cms(cert, key, attributes=None, content=BODY, certificates=[device_ec[0]])
    with pytest.raises(SignatureError, match="no embedded certificate matches"):
        verify_detached(other_only, BODY)


def test_refuses_key_that_does_not_fit_the_algorithm(
    device_rsa: Identity, device_ec: Identity, build_cms: Callable[..., bytes]
) -> None:
    """An ECDSA SignerInfo naming an RSA certificate (issuer and serial rewritten to match)."""
    signature = build_cms(
        device_ec[0], device_ec[1], attributes=None, content=BODY, certificates=[device_rsa[0]]
    )
    parsed = cms.ContentInfo.load(signature)
    sid = parsed["content"]["signer_infos"][0]["sid"].chosen
    sid["serial_number"] = device_rsa[0].serial_number
    with pytest.raises(SignatureError, match="ECDSA signature algorithm does not fit"):
        verify_detached(parsed.dump(force=True), BODY)


@pytest.mark.parametrize(
    "blob",
    [
        b"\x00",
        b"garbage that is not ASN.1 at all",
        b"\x30\x03\x02\x01",  # truncated
        b"\x30\x00",
        b"\x30\x03\x02\x01\x01\xff",  # trailing data
        b"\x30\x80\x02\x01\x01",  # no end-of-contents
        b"\x04\x80\x00\x00",  # primitive with indefinite length
        b"\x30\x89\x01\x00\x00\x00\x00\x00\x00\x00\x00",  # absurd length
        b"\x1f\x81\x00\x00",  # high tag number
    ],
)
def test_refuses_garbage(blob: bytes) -> None:
    with pytest.raises(SignatureError):
        verify_detached(blob, BODY)


def test_refuses_a_certificate_presented_as_signature(device_rsa: Identity) -> None:
    der = device_rsa[0].public_bytes(serialization.Encoding.DER)
    with pytest.raises(SignatureError, match=r"not a CMS ContentInfo|not SignedData"):
        verify_detached(der, BODY)


def test_every_truncation_and_byte_flip_gives_a_signature_error(device_ec: Identity) -> None:
    """Whatever happens to the bytes, the only failure callers see is SignatureError."""
    cert, key = device_ec
    signature = sign_detached(BODY, cert, key, digest="sha1")
    for length in range(len(signature)):
        with pytest.raises(SignatureError):
            verify_detached(signature[:length], BODY)
    for position in range(len(signature)):
        mutated = bytearray(signature)
        mutated[position] ^= 0x80
        with contextlib.suppress(SignatureError):  # anything else fails the test
            verify_detached(bytes(mutated), BODY)


def test_refuses_bad_base64_and_empty_header() -> None:
    for value in ("not base64 at all!", "QUJ", "QU=D", "QUJDRA===x", "é"):
        with pytest.raises(SignatureError, match="not valid base64"):
            verify_mdm_signature(value, BODY)
    with pytest.raises(SignatureError, match="empty"):
        verify_mdm_signature(" \n", BODY)


def test_refuses_oversized_input_before_parsing() -> None:
    huge = b"\x30\x84" + (MAX_SIGNATURE_BYTES).to_bytes(4, "big") + bytes(MAX_SIGNATURE_BYTES)
    with pytest.raises(SignatureError, match="at most 65536"):
        verify_detached(huge, BODY)
    with pytest.raises(SignatureError, match="characters; at most"):
        verify_mdm_signature(base64.b64encode(huge).decode(), BODY)


def test_refuses_deep_nesting_without_recursing() -> None:
    levels = 10_000
    indefinite = b"\x30\x80" * levels + b"\x00\x00" * levels
    with pytest.raises(SignatureError, match="nesting deeper than 32"):
        verify_detached(indefinite, BODY)
    definite = b"\x05\x00"
    for _ in range(levels):
        length = len(definite)
        header = bytes((length,)) if length < 0x80 else b"\x82" + length.to_bytes(2, "big")
        definite = b"\x30" + header + definite
    assert len(definite) < MAX_SIGNATURE_BYTES
    with pytest.raises(SignatureError, match="nesting deeper than 32"):
        verify_detached(definite, BODY)


def test_repeated_poll_is_served_from_the_parse_cache(device_rsa: Identity) -> None:
    cert, key = device_rsa
    signature = sign_detached(BODY + b"<!-- poll -->", cert, key, signed_attributes=False)
    verify_detached(signature, BODY + b"<!-- poll -->")
    hits = cache_info()["signatures"].hits  # type: ignore[attr-defined]
    verify_detached(signature, BODY + b"<!-- poll -->")
    assert cache_info()["signatures"].hits == hits + 1  # type: ignore[attr-defined]


def test_large_signature_beyond_the_cacheable_size_still_verifies(
    device_rsa: Identity, ca: Identity, build_cms: Callable[..., bytes]
) -> None:
    """Many embedded certificates (a long chain, say) take the uncached path, same answers."""
    cert, key = device_rsa
    signature = build_cms(
        cert, key, attributes=None, content=BODY, certificates=[ca[0]] * 12 + [cert]
    )
    assert 8 * 1024 < len(signature) < MAX_SIGNATURE_BYTES
    assert verify_detached(signature, BODY) == cert
    with pytest.raises(SignatureError, match="does not verify"):
        verify_detached(signature, BODY + b"x")


def _tlv(first: int, content: bytes) -> bytes:
    """One DER element: identifier octet, definite length, content."""
    n = len(content)
    length = bytes((n,)) if n < 0x80 else bytes((0x82,)) + n.to_bytes(2, "big")
    return bytes((first,)) + length + content


def _parts(element: bytes) -> tuple[int, list[bytes]]:
    """An element's identifier octet and its children, each as encoded."""
    _, _, _, header, content, _ = parser.parse(element, strict=True)
    out, pos = [], 0
    while pos < len(content):
        _, _, _, h, c, t = parser.parse(content[pos:])
        out.append(h + c + t)
        pos += len(h) + len(c) + len(t)
    return header[0], out


def _edit_signer_info(signature: bytes, edit: Callable[[list[bytes]], list[bytes]]) -> bytes:
    """The signature with its one SignerInfo's fields replaced by `edit(fields)`."""
    top, (oid, wrapped) = _parts(signature)
    explicit, (signed_data,) = _parts(wrapped)
    sd_tag, fields = _parts(signed_data)
    set_tag, (signer_info,) = _parts(fields[-1])
    si_tag, si_fields = _parts(signer_info)
    fields[-1] = _tlv(set_tag, _tlv(si_tag, b"".join(edit(si_fields))))
    return _tlv(top, oid + _tlv(explicit, _tlv(sd_tag, b"".join(fields))))


def test_the_walk_refuses_fields_where_rfc_5652_has_none(device_rsa: Identity) -> None:
    """The per-request walk checks every field's place and tag: an extra field, a missing
    signature or a signature of another type is refused with its reason, and the untouched
    re-encoding still verifies (so the test edits what it means to)."""
    cert, key = device_rsa
    signature = sign_detached(BODY, cert, key, digest="sha1")
    assert verify_detached(_edit_signer_info(signature, lambda f: f), BODY) == cert
    extra = _edit_signer_info(signature, lambda f: [*f, b"\x02\x01\x00"])
    with pytest.raises(SignatureError, match="unexpected field after its signature"):
        verify_detached(extra, BODY)
    missing = _edit_signer_info(signature, lambda f: f[:-1])
    with pytest.raises(SignatureError, match="signature is missing"):
        verify_detached(missing, BODY)
    as_integer = _edit_signer_info(signature, lambda f: [*f[:-1], b"\x02" + f[-1][1:]])
    with pytest.raises(SignatureError, match="signature is not an OCTET STRING"):
        verify_detached(as_integer, BODY)


def test_ber_inside_the_certificates_alone_is_read_too(device_rsa: Identity) -> None:
    """Only the certificate set uses an indefinite length: the walk meets it and reads the
    signature again, made definite, and it verifies."""
    cert, key = device_rsa
    signature = sign_detached(BODY, cert, key, digest="sha1")
    top, (oid, wrapped) = _parts(signature)
    explicit, (signed_data,) = _parts(wrapped)
    sd_tag, fields = _parts(signed_data)
    index = next(i for i, f in enumerate(fields) if f[0] == 0xA0)
    certs_tag, certs = _parts(fields[index])
    fields[index] = bytes((certs_tag, 0x80)) + b"".join(certs) + b"\x00\x00"
    ber = _tlv(top, oid + _tlv(explicit, _tlv(sd_tag, b"".join(fields))))
    assert ber != signature
    assert verify_detached(ber, BODY) == cert
