"""The CA toolkit: certificates carry the extensions relying parties check."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mdmserver.crypto.ca import (
    PrivateKey,
    create_ca,
    dump_cert_pem,
    dump_key_pem,
    fingerprint_sha256,
    generate_key,
    issue_certificate,
    load_pem_certificates,
    load_private_key,
)
from mdmserver.crypto.errors import CertificateFormatError

Identity = tuple[x509.Certificate, PrivateKey]


def _ext(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType:
    return cert.extensions.get_extension_for_class(kind).value


@pytest.mark.parametrize("key_type", ["rsa", "ec"])
def test_create_ca_is_a_self_signed_ca(key_type: str) -> None:
    cert, key = create_ca("Acme MDM CA", key_type=key_type, lifetime=timedelta(days=400))  # type: ignore[arg-type]
    cert.verify_directly_issued_by(cert)
    assert isinstance(key, rsa.RSAPrivateKey if key_type == "rsa" else ec.EllipticCurvePrivateKey)
    assert _ext(cert, x509.BasicConstraints).ca is True  # type: ignore[attr-defined]
    usage = _ext(cert, x509.KeyUsage)
    assert usage.key_cert_sign and usage.crl_sign  # type: ignore[attr-defined]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Acme MDM CA"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=400) <= lifetime < timedelta(days=401)


def test_issue_certificate_sets_usages_names_and_key_ids(ca: Identity) -> None:
    key = generate_key("ec")
    cert = issue_certificate(
        ca[0],
        ca[1],
        key.public_key(),
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mdm.example.com")]),
        lifetime=timedelta(days=90),
        server_auth=True,
        client_auth=True,
        san_dns=["mdm.example.com", "enroll.example.com"],
        serial=4242,
    )
    cert.verify_directly_issued_by(ca[0])
    assert cert.serial_number == 4242
    assert _ext(cert, x509.BasicConstraints).ca is False  # type: ignore[attr-defined]
    assert list(_ext(cert, x509.ExtendedKeyUsage)) == [  # type: ignore[call-overload]
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.SERVER_AUTH,
    ]
    names = _ext(cert, x509.SubjectAlternativeName).get_values_for_type(x509.DNSName)  # type: ignore[attr-defined]
    assert names == ["mdm.example.com", "enroll.example.com"]
    aki = _ext(cert, x509.AuthorityKeyIdentifier).key_identifier  # type: ignore[attr-defined]
    assert aki == _ext(ca[0], x509.SubjectKeyIdentifier).digest  # type: ignore[attr-defined]
    assert _ext(cert, x509.SubjectKeyIdentifier) == x509.SubjectKeyIdentifier.from_public_key(
        key.public_key()
    )


def test_issued_certificate_never_outlives_its_ca(ca: Identity) -> None:
    key = generate_key("ec")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "long")])
    cert = issue_certificate(ca[0], ca[1], key.public_key(), name, lifetime=timedelta(days=99999))
    assert cert.not_valid_after_utc == ca[0].not_valid_after_utc
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)


def test_fingerprint_matches_openssl(ca: Identity, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(dump_cert_pem(ca[0]))
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", tmp_path / "ca.pem"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    expected = out.strip().split("=", 1)[1].replace(":", "").lower()
    assert fingerprint_sha256(ca[0]) == expected


def test_pem_round_trips(ca: Identity, device_rsa: Identity, device_ec: Identity) -> None:
    bundle = dump_cert_pem(ca[0]) + dump_cert_pem(device_rsa[0])
    assert load_pem_certificates(bundle) == [ca[0], device_rsa[0]]
    for _, key in (device_rsa, device_ec):
        pem = dump_key_pem(key)
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
        loaded = load_private_key(pem)
        assert loaded.private_numbers() == key.private_numbers()  # type: ignore[union-attr]
    encrypted = device_ec[1].private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    assert load_private_key(encrypted, b"s3cret").private_numbers() == (
        device_ec[1].private_numbers()
    )
    with pytest.raises(CertificateFormatError, match="cannot load the private key"):
        load_private_key(encrypted, b"wrong")


def test_bad_pem_is_refused() -> None:
    with pytest.raises(CertificateFormatError, match="not a PEM certificate bundle"):
        load_pem_certificates(b"nothing here")
    with pytest.raises(CertificateFormatError, match="cannot load the private key"):
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    ed_key = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(CertificateFormatError, match="only RSA and EC"):
        load_private_key(ed_key)


def test_weak_or_unknown_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="shorter than 2048"):
        generate_key("rsa", 1024)
    with pytest.raises(ValueError, match="no EC curve of 200"):
        generate_key("ec", 200)
    with pytest.raises(ValueError, match="unknown key type"):
        generate_key("dsa")  # type: ignore[arg-type]
