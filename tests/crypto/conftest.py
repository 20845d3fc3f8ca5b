"""Real CAs, device identities and CMS builders for the crypto tests (no mocks)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from asn1crypto import algos, cms
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from mdmserver.crypto.ca import PrivateKey, create_ca, generate_key, issue_certificate

Identity = tuple[x509.Certificate, PrivateKey]


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="session")
def ca() -> Identity:
    return create_ca("mdmserver test CA")


@pytest.fixture(scope="session")
def other_ca() -> Identity:
    return create_ca("Some other CA", key_type="ec")


def _device(ca: Identity, key_type: str, common_name: str) -> Identity:
    key = generate_key(key_type)  # type: ignore[arg-type]
    cert = issue_certificate(
        ca[0],
        ca[1],
        key.public_key(),
        name(common_name),
        lifetime=timedelta(days=365),
        client_auth=True,
    )
    return cert, key


@pytest.fixture(scope="session")
def device_rsa(ca: Identity) -> Identity:
    return _device(ca, "rsa", "device RSA-2048")


@pytest.fixture(scope="session")
def device_ec(ca: Identity) -> Identity:
    return _device(ca, "ec", "device P-256")


@pytest.fixture(scope="session", params=["rsa", "ec"])
def device(request: pytest.FixtureRequest, device_rsa: Identity, device_ec: Identity) -> Identity:
    return device_rsa if request.param == "rsa" else device_ec


def _convert(data: bytes, pos: int, chunk: int) -> tuple[bytes, int]:
    """Independent of the code under test on purpose: a second, recursive reading of DER."""
    tag = data[pos]
    first = data[pos + 1]
    if first < 0x80:
        body, length = pos + 2, first
    else:
        count = first & 0x7F
        body, length = pos + 2 + count, int.from_bytes(data[pos + 2 : pos + 2 + count], "big")
    end = body + length
    if tag & 0x20:
        parts, cursor = [], body
        while cursor < end:
            converted, cursor = _convert(data, cursor, chunk)
            parts.append(converted)
        return bytes((tag, 0x80)) + b"".join(parts) + b"\x00\x00", end
    if chunk and tag == 0x04 and length > chunk:
        segments = [data[i : min(i + chunk, end)] for i in range(body, end, chunk)]
        encoded = b"".join(b"\x04" + bytes((len(s),)) + s for s in segments)
        return b"\x24\x80" + encoded + b"\x00\x00", end
    return data[pos:end], end


def to_ber_indefinite(der: bytes, chunk: int = 0) -> bytes:
    """The same value with every constructed element in indefinite-length form, and OCTET
    STRINGs longer than `chunk` (when given, < 128) split into constructed segments."""
    converted, end = _convert(der, 0, chunk)
    assert end == len(der)
    return converted


@pytest.fixture(scope="session")
def to_ber() -> Callable[..., bytes]:
    return to_ber_indefinite


_HASHES = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(), "sha512": hashes.SHA512()}


def build_signed_data(
    cert: x509.Certificate,
    key: PrivateKey,
    *,
    attributes: list[tuple[str, Any]] | None,
    content: bytes = b"",
    digest: str = "sha256",
    sid: str = "issuer_and_serial",
    certificates: list[x509.Certificate] | None = None,
) -> bytes:
    """A detached SignedData assembled field by field with asn1crypto, so tests can say
    anything they like in the signed attributes while the signature over them stays valid."""
    embedded = [
        ax509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
        for c in (certificates if certificates is not None else [cert])
    ]
    signer_cert = ax509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    attrs = None
    to_sign = content
    if attributes is not None:
        attrs = cms.CMSAttributes(
            [cms.CMSAttribute({"type": kind, "values": [value]}) for kind, value in attributes]
        )
        to_sign = attrs.dump()
        assert to_sign[0] == 0x31
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(to_sign, padding.PKCS1v15(), _HASHES[digest])
        signature_alg = f"{digest}_rsa"
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        signature = key.sign(to_sign, ec.ECDSA(_HASHES[digest]))
        signature_alg = f"{digest}_ecdsa"
    if sid == "issuer_and_serial":
        identifier = cms.SignerIdentifier(
            name="issuer_and_serial_number",
            value=cms.IssuerAndSerialNumber(
                {"issuer": signer_cert.issuer, "serial_number": signer_cert.serial_number}
            ),
        )
    else:
        identifier = cms.SignerIdentifier(
            name="subject_key_identifier", value=signer_cert.key_identifier
        )
    info: dict[str, Any] = {
        "version": "v1" if sid == "issuer_and_serial" else "v3",
        "sid": identifier,
        "digest_algorithm": algos.DigestAlgorithm({"algorithm": digest}),
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": signature_alg}),
        "signature": signature,
    }
    if attrs is not None:
        info["signed_attrs"] = attrs
    fields: dict[str, Any] = {
        "version": "v1",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": digest})],
        "encap_content_info": {"content_type": "data"},
        "signer_infos": [cms.SignerInfo(info)],
    }
    if embedded:  # an empty list leaves the optional field out altogether
        fields["certificates"] = embedded
    signed_data = cms.SignedData(fields)
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


@pytest.fixture(scope="session")
def build_cms() -> Callable[..., bytes]:
    return build_signed_data
