"""A throw-away device CA for tests, benchmarks and the simulator: it mints identities as the
SCEP server would, so requests signed with them pass the server's trust check."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from mdmserver.crypto.ca import (
    KeyType,
    PrivateKey,
    create_ca,
    dump_cert_pem,
    generate_key,
    issue_certificate,
)
from mdmserver.testing.device import VirtualDevice

_PLACEHOLDER = b"subject-placeholder"
# Not UTF-8 (a lone continuation byte, an overlong form), same length as the placeholder.
_NOT_UTF8 = b"\xff\xfe\xc0\xaf\x80 not utf-8! \xed\xa0"

TEST_TOPIC = "com.apple.mgmt.External.7f1c9a0e-3b0b-4f4e-9d62-2f5bd0c4a001"


class Pki:
    def __init__(self, directory: Path, key_type: KeyType = "rsa") -> None:
        self.ca_cert, self.ca_key = create_ca("mdmserver test device CA", key_type=key_type)
        self.ca_file = directory / "ca.pem"
        self.ca_file.write_bytes(dump_cert_pem(self.ca_cert))

    def identity(
        self, common_name: str = "device", key_type: KeyType = "rsa"
    ) -> tuple[x509.Certificate, PrivateKey]:
        key = generate_key(key_type)
        cert = issue_certificate(
            self.ca_cert,
            self.ca_key,
            key.public_key(),
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
            lifetime=timedelta(days=365),
            client_auth=True,
        )
        return cert, key

    def device(
        self, common_name: str = "device", key_type: KeyType = "rsa", **kwargs: Any
    ) -> VirtualDevice:
        cert, key = self.identity(common_name, key_type)
        kwargs.setdefault("topic", TEST_TOPIC)
        return VirtualDevice(certificate=cert, key=key, **kwargs)

    def undecodable_identity(self) -> tuple[x509.Certificate, PrivateKey]:
        """A properly signed client identity whose subject CN (a UTF8String) is not UTF-8:
        what a hostile or broken client can present, which libraries refuse to decode."""
        cert, key = self.identity(_PLACEHOLDER.decode())
        return resign_with_tbs(
            cert, cert.tbs_certificate_bytes.replace(_PLACEHOLDER, _NOT_UTF8), self.ca_key
        ), key

    def bad_extension_identity(self) -> tuple[x509.Certificate, PrivateKey]:
        """A properly signed client identity whose subjectAltName does not parse (a name that
        is a SEQUENCE instead of a dNSName)."""
        key = generate_key("rsa")
        cert = issue_certificate(
            self.ca_cert,
            self.ca_key,
            key.public_key(),
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bad extension")]),
            lifetime=timedelta(days=365),
            client_auth=True,
            san_dns=[_PLACEHOLDER.decode()],
        )
        tbs = cert.tbs_certificate_bytes
        at = tbs.index(_PLACEHOLDER) - 2  # the [2] dNSName tag before its length
        return resign_with_tbs(cert, tbs[:at] + b"\x30" + tbs[at + 1 :], self.ca_key), key


def resign_with_tbs(cert: x509.Certificate, tbs: bytes, ca_key: PrivateKey) -> x509.Certificate:
    """`cert` with its to-be-signed part replaced by `tbs` and signed again (RSA CA keys), so
    a test can present bytes no certificate builder would produce."""
    assert isinstance(ca_key, rsa.RSAPrivateKey), "resign_with_tbs signs with RSA CA keys"
    signature = ca_key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    original = asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))
    rebuilt = asn1_x509.Certificate(
        {
            # Loaded lazily and never re-encoded: the bytes stay exactly as the test made them.
            "tbs_certificate": asn1_x509.TbsCertificate.load(tbs),
            "signature_algorithm": original["signature_algorithm"],
            "signature_value": signature,
        }
    )
    return x509.load_der_x509_certificate(rebuilt.dump())


def with_invalid_version(cert: x509.Certificate) -> bytes:
    """The certificate's DER with an X.509 version no loader accepts (5): cryptography raises
    ``InvalidVersion`` for it, which is not a ``ValueError`` (found by tests/fuzz)."""
    der = cert.public_bytes(Encoding.DER)
    v3 = b"\xa0\x03\x02\x01\x02"
    assert der.count(v3) == 1
    return der.replace(v3, b"\xa0\x03\x02\x01\x05")
