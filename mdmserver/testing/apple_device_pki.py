"""A synthetic Apple device-identity PKI, shaped like Apple's: for tests and the simulator.

Real devices sign their profile-service attributes with an identity Apple issued at activation:
an RSA-1024 key, SHA-1 signatures, under "Apple iPhone Device CA" and "Apple iPhone
Certification Authority", both expired, up to "Apple Root CA". This module builds the same shape
with its own keys, so the server's checks run on what a device really presents. cryptography's
X.509 builder refuses SHA-1, so each certificate is built with it and then re-signed with SHA-1
through asn1crypto (the TBSCertificate names the new algorithm before it is signed).

A folder form (``save``/``load``) lets the simulator and a server in another process agree: the
server trusts ``apple-device-ca.pem`` (``MDM_APPLE_DEVICE_CA_FILE``), the simulator keeps the
device CA's key to mint one identity per simulated device.
"""

from __future__ import annotations

import plistlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from mdmserver.crypto.ca import dump_cert_pem, dump_key_pem, load_pem_certificates
from mdmserver.crypto.cms_sign import sign_attached
from mdmserver.push.instance import write_private

BUNDLE_FILE = "apple-device-ca.pem"  # what the server trusts: root and both intermediates
DEVICE_CA_KEY_FILE = "device-ca.key"
_UTC = UTC


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Simulated Apple Inc."),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Apple Certification Authority"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def sha1_certificate(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: rsa.RSAPublicKey,
    issuer_key: rsa.RSAPrivateKey,
    *,
    not_before: datetime,
    not_after: datetime,
    is_ca: bool,
) -> x509.Certificate:
    usage = x509.KeyUsage(
        digital_signature=not is_ca,
        content_commitment=False,
        key_encipherment=not is_ca,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=is_ca,
        crl_sign=is_ca,
        encipher_only=False,
        decipher_only=False,
    )
    draft = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(issuer_key, hashes.SHA256())
    )
    parsed = asn1_x509.Certificate.load(draft.public_bytes(serialization.Encoding.DER))
    algorithm = asn1_x509.SignedDigestAlgorithm({"algorithm": "sha1_rsa", "parameters": None})
    tbs = parsed["tbs_certificate"]
    tbs["signature"] = algorithm
    tbs_der = tbs.dump(force=True)
    signature = issuer_key.sign(tbs_der, padding.PKCS1v15(), hashes.SHA1())
    resigned = asn1_x509.Certificate(
        {
            "tbs_certificate": asn1_x509.TbsCertificate.load(tbs_der),
            "signature_algorithm": algorithm,
            "signature_value": signature,
        }
    )
    return x509.load_der_x509_certificate(resigned.dump())


def _rsa(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@dataclass(frozen=True)
class AppleDevicePki:
    root: x509.Certificate
    certification_authority: x509.Certificate  # expired, as Apple's is
    device_ca: x509.Certificate  # expired, as Apple's is
    device_ca_key: rsa.RSAPrivateKey

    @classmethod
    def create(cls) -> AppleDevicePki:
        root_key, ca_key, device_ca_key = _rsa(2048), _rsa(2048), _rsa(1024)
        root_name = _name("Simulated Apple Root CA")
        ca_name = _name("Simulated Apple iPhone Certification Authority")
        root = sha1_certificate(
            root_name,
            root_name,
            root_key.public_key(),
            root_key,
            not_before=datetime(2006, 4, 25, tzinfo=_UTC),
            not_after=datetime(2035, 2, 9, tzinfo=_UTC),
            is_ca=True,
        )
        authority = sha1_certificate(
            ca_name,
            root_name,
            ca_key.public_key(),
            root_key,
            not_before=datetime(2007, 4, 12, tzinfo=_UTC),
            not_after=datetime(2014, 4, 12, tzinfo=_UTC),
            is_ca=True,
        )
        device_ca = sha1_certificate(
            _name("Simulated Apple iPhone Device CA"),
            ca_name,
            device_ca_key.public_key(),
            ca_key,
            not_before=datetime(2007, 4, 16, tzinfo=_UTC),
            not_after=datetime(2022, 4, 16, tzinfo=_UTC),
            is_ca=True,
        )
        return cls(root, authority, device_ca, device_ca_key)

    @property
    def intermediates(self) -> tuple[x509.Certificate, x509.Certificate]:
        return (self.device_ca, self.certification_authority)

    def bundle_pem(self, *, with_intermediates: bool = True) -> bytes:
        """What an administrator configures: Apple's root, and its device intermediates for
        devices (Macs) that send no chain."""
        certs = [self.root, *(self.intermediates if with_intermediates else ())]
        return b"".join(dump_cert_pem(c) for c in certs)

    def device_identity(
        self, udid: str, *, not_after: datetime | None = None
    ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """A device certificate as Apple issues at activation: RSA-1024, SHA-1, a leaf (valid
        for three years unless `not_after` says otherwise)."""
        key = _rsa(1024)
        now = datetime.now(UTC)
        end = not_after or now + timedelta(days=3 * 365)
        cert = sha1_certificate(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, udid)]),
            self.device_ca.subject,
            key.public_key(),
            self.device_ca_key,
            not_before=min(now, end) - timedelta(days=1),
            not_after=end,
            is_ca=False,
        )
        return cert, key

    def sign_attributes(
        self,
        attributes: Mapping[str, Any],
        identity: tuple[x509.Certificate, rsa.RSAPrivateKey],
        *,
        send_chain: bool = True,
    ) -> bytes:
        """The body a device POSTs to a profile service: its attributes plist in an attached
        SHA-1 SignedData; iOS sends its chain, macOS only its own certificate."""
        cert, key = identity
        chain: Sequence[x509.Certificate] = self.intermediates if send_chain else ()
        body = plistlib.dumps(dict(attributes))
        return sign_attached(body, cert, key, digest="sha1", chain=chain)

    # A folder shared between processes ---------------------------------------------------------

    def save(self, folder: Path) -> Path:
        """Write the bundle (public) and the device CA key (0600); returns the bundle path."""
        folder.mkdir(parents=True, exist_ok=True)
        write_private(folder / DEVICE_CA_KEY_FILE, dump_key_pem(self.device_ca_key))
        bundle = folder / BUNDLE_FILE
        bundle.write_bytes(self.bundle_pem())
        return bundle

    @classmethod
    def load(cls, folder: Path) -> AppleDevicePki:
        root, device_ca, authority = load_pem_certificates((folder / BUNDLE_FILE).read_bytes())
        key = serialization.load_pem_private_key(
            (folder / DEVICE_CA_KEY_FILE).read_bytes(), password=None
        )
        assert isinstance(key, rsa.RSAPrivateKey)
        return cls(root, authority, device_ca, key)

    @classmethod
    def load_or_create(cls, folder: Path) -> tuple[AppleDevicePki, bool]:
        """The PKI in `folder`, and whether it was just created."""
        if (folder / BUNDLE_FILE).is_file() and (folder / DEVICE_CA_KEY_FILE).is_file():
            return cls.load(folder), False
        pki = cls.create()
        pki.save(folder)
        return pki, True
