"""A throw-away device CA for tests, benchmarks and the simulator: it mints identities as the
SCEP server would, so requests signed with them pass the server's trust check."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
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


def with_invalid_version(cert: x509.Certificate) -> bytes:
    """The certificate's DER with an X.509 version no loader accepts (5): cryptography raises
    ``InvalidVersion`` for it, which is not a ``ValueError`` (found by tests/fuzz)."""
    der = cert.public_bytes(Encoding.DER)
    v3 = b"\xa0\x03\x02\x01\x02"
    assert der.count(v3) == 1
    return der.replace(v3, b"\xa0\x03\x02\x01\x05")
