"""A small certificate authority toolkit.

Shared by `mdmserver init` (the server's own CA), the SCEP server (device identities) and the
tests (real certificates instead of mocks), so issuing rules live in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mdmserver.crypto.errors import CertificateFormatError

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
KeyType: TypeAlias = Literal["rsa", "ec"]

# Back-date validity a little so a device whose clock runs slightly behind accepts a fresh cert.
_CLOCK_SKEW = timedelta(minutes=5)
_EC_CURVES: dict[int, ec.EllipticCurve] = {
    256: ec.SECP256R1(),
    384: ec.SECP384R1(),
    521: ec.SECP521R1(),
}


def generate_key(key_type: KeyType = "rsa", bits: int = 2048) -> PrivateKey:
    """A new private key; for EC, `bits` picks the NIST curve (2048 means the default P-256)."""
    if key_type == "rsa":
        if bits < 2048:
            raise ValueError(f"RSA keys shorter than 2048 bits are refused (asked for {bits})")
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    if key_type == "ec":
        curve = _EC_CURVES.get(256 if bits == 2048 else bits)
        if curve is None:
            raise ValueError(f"no EC curve of {bits} bits; use 256, 384 or 521")
        return ec.generate_private_key(curve)
    raise ValueError(f"unknown key type {key_type!r}; use 'rsa' or 'ec'")


def _signing_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384:
    """SHA-384 for P-384/P-521 CA keys keeps hash and curve strengths matched."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384()
    return hashes.SHA256()


def create_ca(
    common_name: str,
    *,
    key_type: KeyType = "rsa",
    lifetime: timedelta = timedelta(days=3650),
) -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed root CA allowed to sign certificates and CRLs, with its new key."""
    key = generate_key(key_type)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(is_ca=True, is_ec=key_type == "ec"), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, _signing_hash(key))
    )
    return cert, key


def _key_usage(*, is_ca: bool, is_ec: bool) -> x509.KeyUsage:
    """CAs sign certificates; leaves sign, and RSA leaves may also receive wrapped keys (SCEP)."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not is_ca and not is_ec,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=is_ca,
        crl_sign=is_ca,
        encipher_only=False,
        decipher_only=False,
    )


def issue_certificate(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    public_key: PublicKey,
    subject: x509.Name,
    *,
    lifetime: timedelta,
    client_auth: bool = False,
    server_auth: bool = False,
    code_signing: bool = False,
    san_dns: Sequence[str] = (),
    is_ca: bool = False,
    serial: int | None = None,
) -> x509.Certificate:
    """Sign `public_key` into a certificate for `subject`, with only the usages asked for."""
    if serial is not None and not 0 < serial < 2**159:
        raise ValueError("certificate serial numbers must be positive and at most 159 bits")
    now = datetime.now(UTC)
    not_after = now + lifetime
    # A certificate outliving its issuer would fail validation later in confusing ways.
    not_after = min(not_after, ca_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            _key_usage(is_ca=is_ca, is_ec=isinstance(public_key, ec.EllipticCurvePublicKey)),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_authority_key_id(ca_cert), critical=False)
    )
    usages = [
        oid
        for wanted, oid in (
            (client_auth, ExtendedKeyUsageOID.CLIENT_AUTH),
            (server_auth, ExtendedKeyUsageOID.SERVER_AUTH),
            (code_signing, ExtendedKeyUsageOID.CODE_SIGNING),
        )
        if wanted
    ]
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if san_dns:
        names = [x509.DNSName(name) for name in san_dns]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, _signing_hash(ca_key))


def build_crl(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    revoked: Sequence[tuple[int, datetime]],
    *,
    now: datetime,
    lifetime: timedelta,
) -> x509.CertificateRevocationList:
    """A CRL signed by the CA listing (serial, revocation time) entries."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now)
        .next_update(now + lifetime)
        .add_extension(_authority_key_id(ca_cert), critical=False)
    )
    for serial, revoked_at in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revoked_at)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(ca_key, _signing_hash(ca_key))


def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """Point at the issuer's own SKI when it has one, so chain builders match the same bytes."""
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """The SHA-256 fingerprint as lowercase hex, the form stored and compared everywhere."""
    return cert.fingerprint(hashes.SHA256()).hex()


def load_pem_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle; refuse a bundle that holds none."""
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertificateFormatError("the data is not a PEM certificate bundle") from None
    if not certs:
        raise CertificateFormatError("the PEM data holds no certificate")
    return certs


def load_private_key(data: bytes, password: bytes | None = None) -> PrivateKey:
    """An RSA or EC private key from PEM (or DER), refusing other key types."""
    loader = (
        serialization.load_pem_private_key
        if data.lstrip().startswith(b"-----")
        else serialization.load_der_private_key
    )
    try:
        key = loader(data, password=password)
    except (ValueError, TypeError) as exc:
        raise CertificateFormatError(f"cannot load the private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CertificateFormatError(
            f"only RSA and EC private keys are supported, not {type(key).__name__}"
        )
    return key


def dump_cert_pem(cert: x509.Certificate) -> bytes:
    """PEM text of one certificate."""
    return cert.public_bytes(serialization.Encoding.PEM)


def dump_key_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM: the server reads it unattended, so protect the file instead."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
