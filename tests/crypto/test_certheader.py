"""Client certificates forwarded by a reverse proxy: RFC 9440 and nginx forms only."""

from __future__ import annotations

import base64
import urllib.parse

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mdmserver.crypto.ca import PrivateKey, dump_cert_pem
from mdmserver.crypto.certheader import parse_client_cert_header
from mdmserver.crypto.errors import CertificateFormatError
from mdmserver.testing.pki import with_invalid_version

Identity = tuple[x509.Certificate, PrivateKey]


def test_rfc9440_byte_sequence_round_trips(device: Identity) -> None:
    der = device[0].public_bytes(serialization.Encoding.DER)
    value = ":" + base64.b64encode(der).decode() + ":"
    assert parse_client_cert_header(value) == device[0]
    assert parse_client_cert_header(f"  {value} ") == device[0]


@pytest.mark.parametrize("safe", ["", "/+="], ids=["all-escaped", "nginx-style"])
def test_url_escaped_pem_round_trips(device: Identity, safe: str) -> None:
    value = urllib.parse.quote(dump_cert_pem(device[0]).decode(), safe=safe)
    assert "\n" not in value and " " not in value
    assert parse_client_cert_header(value) == device[0]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("hello", "neither an RFC 9440"),
        ("::", "neither an RFC 9440"),
        (":not base64!:", "not valid base64"),
        (":aGVsbG8gd29ybGQ=:", "does not hold a DER certificate"),
        ("-----BEGIN%20CERTIFICATE-----%0Ajunk%0A-----END%20CERTIFICATE-----", "valid certificate"),
        ("-----BEGIN%20PRIVATE%20KEY-----%0Ajunk", "does not start with a CERTIFICATE"),
        ("-----BEGIN%20CERTIFICATE-----%FF%FE", "not valid percent-encoding"),
        (":" + "A" * 40_000 + ":", "at most"),
    ],
)
def test_junk_is_refused_with_a_reason(value: str, reason: str) -> None:
    with pytest.raises(CertificateFormatError, match=reason):
        parse_client_cert_header(value)


def test_bare_base64_der_without_colons_is_refused(device: Identity) -> None:
    der = device[0].public_bytes(serialization.Encoding.DER)
    with pytest.raises(CertificateFormatError, match="neither an RFC 9440"):
        parse_client_cert_header(base64.b64encode(der).decode())


def test_a_certificate_of_an_unknown_version_is_refused(device: Identity) -> None:
    """Found by tests/fuzz: cryptography's InvalidVersion escaped as an unexpected exception."""
    der = with_invalid_version(device[0])
    with pytest.raises(CertificateFormatError, match="does not hold a DER certificate"):
        parse_client_cert_header(":" + base64.b64encode(der).decode() + ":")
    pem = (
        b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE-----\n"
    )
    with pytest.raises(CertificateFormatError, match="does not hold a valid certificate"):
        parse_client_cert_header(urllib.parse.quote(pem.decode()))
