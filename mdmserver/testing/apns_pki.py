"""A throwaway Apple-like PKI for the APNs stand-in: a CA, its TLS server cert, push certs.

Tests, demos and benchmarks need the same three things Apple provides in production (a CA the
push client trusts, a server certificate for the push gateway, and an MDM push certificate whose
subject UID is the topic); generating them here keeps every caller on real TLS.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MDM_TOPIC_PREFIX = "com.apple.mgmt.External."


@dataclass(frozen=True)
class Identity:
    """A certificate and its private key, with the PEM forms TLS APIs want."""

    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def new_mdm_topic() -> str:
    """A topic shaped like the ones Apple's Push Certificates Portal issues."""
    return f"{MDM_TOPIC_PREFIX}{uuid.uuid4()}"


def make_ca(common_name: str = "Test Apple Root CA") -> Identity:
    """A self-signed CA (EC P-256: fast to generate, enough for loopback tests)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        _base_builder(name, name, key.public_key(), days=3650)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return Identity(builder.sign(key, hashes.SHA256()), key)


def issue_server_cert(
    ca: Identity, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> Identity:
    """A TLS server certificate for the stand-in, valid for the given IPs and DNS names."""
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    builder = (
        _base_builder(subject, ca.cert.subject, key.public_key(), days=825)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    return Identity(builder.sign(ca.key, hashes.SHA256()), key)


def issue_push_cert(
    ca: Identity,
    topic: str | None = None,
    *,
    not_before: dt.datetime | None = None,
    days: int = 365,
    key: rsa.RSAPrivateKey | None = None,
) -> Identity:
    """An MDM push certificate: RSA-2048 like Apple's, the topic in the subject UID."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    topic = topic or new_mdm_topic()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, topic),
            x509.NameAttribute(NameOID.COMMON_NAME, f"APSP:{uuid.uuid4()}"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )
    builder = (
        _base_builder(subject, ca.cert.subject, key.public_key(), days=days, start=not_before)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    return Identity(builder.sign(ca.key, hashes.SHA256()), key)


def _base_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    *,
    days: int,
    start: dt.datetime | None = None,
) -> x509.CertificateBuilder:
    start = start or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
    )
