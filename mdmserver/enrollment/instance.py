"""The instance folder's key material: created by ``mdmserver init``, loaded by the app.

Every file is created 0600 from the first byte (os.open with the mode, never chmod after; see
mdmserver.instance_files), private keys and certificates alike, and nothing that exists is
overwritten unless asked: losing a CA key orphans every device.
"""

from __future__ import annotations

import ipaddress
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mdmserver.crypto.ca import (
    PrivateKey,
    create_ca,
    dump_cert_pem,
    dump_key_pem,
    generate_key,
    issue_certificate,
    load_pem_certificates,
    load_private_key,
)
from mdmserver.crypto.errors import CertificateFormatError
from mdmserver.instance_files import ensure_home

CA_CERT, CA_KEY = "ca.pem", "ca.key"
SIGNING_CERT, SIGNING_KEY = "signing.pem", "signing.key"
TLS_CERT, TLS_KEY = "tls.pem", "tls.key"
CONFIG = "config.toml"
ALL_FILES = (CA_CERT, CA_KEY, SIGNING_CERT, SIGNING_KEY, TLS_CERT, TLS_KEY, CONFIG)


class InitError(ValueError):
    """`mdmserver init` cannot proceed; the message says what to do."""


@dataclass(frozen=True)
class InitResult:
    home: Path
    written: list[Path] = field(default_factory=list)
    topic_placeholder: bool = False


@dataclass(frozen=True)
class InstanceKeys:
    """What enrollment needs at run time: the issuing CA and the profile signer."""

    ca_cert: x509.Certificate
    ca_key: rsa.RSAPrivateKey
    signing_cert: x509.Certificate
    signing_key: PrivateKey


def check_server_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise InitError(f"--server-url must be an https:// URL with a host name, got {url!r}")
    if parts.query or parts.fragment:
        raise InitError("--server-url must be a plain https:// URL, without query or fragment")
    return url.strip().rstrip("/")


def placeholder_topic() -> str:
    return f"com.apple.mgmt.External.{uuid.uuid4()}"


def write_private(path: Path, data: bytes) -> None:
    """Create `path` readable by its owner only; refuse if it exists (callers unlink first)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _write_public(path: Path, data: bytes) -> None:
    """Certificates and config.toml: public content, but the instance folder stays 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def import_ca(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """An organisation's CA: it must be a CA, unexpired, RSA (SCEP needs it), matching its key."""
    try:
        cert = load_pem_certificates(cert_path.read_bytes())[0]
        key = load_private_key(key_path.read_bytes())
    except (OSError, CertificateFormatError) as exc:
        raise InitError(f"cannot import the CA: {exc}") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if cert.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise InitError(f"{key_path} is not the private key of {cert_path}")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise InitError(f"{cert_path} is not a CA certificate (basicConstraints CA:TRUE)")
    if cert.not_valid_after_utc <= datetime.now(UTC):
        raise InitError(f"{cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InitError("the CA key must be RSA: SCEP clients encrypt their requests to it")
    return cert, key


def _tls_certificate(
    ca_cert: x509.Certificate, ca_key: PrivateKey, key: PrivateKey, host: str
) -> x509.Certificate:
    """A server certificate for local use, valid for localhost, 127.0.0.1 and `host`."""
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        if host != "localhost":
            names.append(x509.DNSName(host))
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        # Apple platforms refuse TLS server certificates valid for more than 825 days.
        .not_valid_after(min(now + timedelta(days=397), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def init_instance(
    home: Path,
    server_url: str,
    *,
    topic: str | None = None,
    force: bool = False,
    imported_ca: tuple[Path, Path] | None = None,
) -> InitResult:
    """Create the CA (or import one), the profile signer, a TLS certificate and config.toml."""
    url = check_server_url(server_url)
    host = urlsplit(url).hostname or "localhost"
    ca = import_ca(*imported_ca) if imported_ca else None
    existing = [home / name for name in ALL_FILES if (home / name).exists()]
    if existing and not force:
        shown = ", ".join(str(p) for p in existing)
        raise InitError(f"refusing to overwrite {shown} (use --force to replace them)")
    ensure_home(home)
    for path in existing:
        path.unlink()
    if ca is None:
        ca_cert, ca_key = create_ca(f"mdmserver device CA ({host})")
    else:
        ca_cert, ca_key = ca
    signing_key = generate_key("rsa")
    signing_cert = issue_certificate(
        ca_cert,
        ca_key,
        signing_key.public_key(),
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"mdmserver profile signing ({host})")]),
        lifetime=timedelta(days=3 * 365),
    )
    tls_key = generate_key("rsa")
    tls_cert = _tls_certificate(ca_cert, ca_key, tls_key, host)
    chosen_topic = topic or placeholder_topic()
    config = f"server_url = {_toml_string(url)}\npush_topics = [{_toml_string(chosen_topic)}]\n"
    written = []
    for name, data, private in (
        (CA_KEY, dump_key_pem(ca_key), True),
        (CA_CERT, dump_cert_pem(ca_cert), False),
        (SIGNING_KEY, dump_key_pem(signing_key), True),
        (SIGNING_CERT, dump_cert_pem(signing_cert) + dump_cert_pem(ca_cert), False),
        (TLS_KEY, dump_key_pem(tls_key), True),
        (TLS_CERT, dump_cert_pem(tls_cert) + dump_cert_pem(ca_cert), False),
        (CONFIG, config.encode(), False),
    ):
        path = home / name
        (write_private if private else _write_public)(path, data)
        written.append(path)
    return InitResult(home=home, written=written, topic_placeholder=topic is None)


def load_instance_keys(home: Path) -> InstanceKeys | None:
    """The keys enrollment runs with, or None when `mdmserver init` has not been run here."""
    paths = [home / n for n in (CA_CERT, CA_KEY, SIGNING_CERT, SIGNING_KEY)]
    if not all(p.is_file() for p in paths):
        return None
    ca_cert = load_pem_certificates(paths[0].read_bytes())[0]
    ca_key = load_private_key(paths[1].read_bytes())
    if not isinstance(ca_key, rsa.RSAPrivateKey):
        raise CertificateFormatError(f"{paths[1]}: the CA key must be RSA for SCEP")
    return InstanceKeys(
        ca_cert=ca_cert,
        ca_key=ca_key,
        signing_cert=load_pem_certificates(paths[2].read_bytes())[0],
        signing_key=load_private_key(paths[3].read_bytes()),
    )
