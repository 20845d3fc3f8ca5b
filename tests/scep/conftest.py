"""A throwaway CA and device, built directly with cryptography (the CA module is not used here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mdmserver.testing.scep_client import self_signed_for_scep


@dataclass(frozen=True)
class Identity:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _new_ca(common_name: str) -> Identity:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Identity(key, cert)


IssueFn = Callable[[x509.CertificateSigningRequest], x509.Certificate]


@pytest.fixture(scope="session")
def ca() -> Identity:
    return _new_ca("Test SCEP CA")


@pytest.fixture(scope="session")
def other_ca() -> Identity:
    return _new_ca("Someone Else's CA")


@pytest.fixture(scope="session")
def device() -> Identity:
    """A device key with the self-signed certificate it signs its first PKCSReq with."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Identity(key, self_signed_for_scep(key, "device-1"))


@pytest.fixture(scope="session")
def issue(ca: Identity) -> IssueFn:
    """What the web layer would do with an accepted request: sign the CSR with our CA."""

    def _issue(csr: x509.CertificateSigningRequest) -> x509.Certificate:
        now = datetime.now(UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(ca.cert.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca.key, hashes.SHA256())
        )

    return _issue
