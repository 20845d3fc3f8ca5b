"""The stand-in for Apple's side: a throwaway "Apple" CA, the push gateway, a push certificate.

Kept in one folder so the server and the simulator agree across processes: the server imports
``push.pem`` (``mdmserver push-cert import``) and trusts ``apple-ca.pem`` for the gateway
(``MDM_APNS_CA_FILE``); the simulator serves the gateway with ``gateway.pem``, trusting only
client certificates the same CA issued, so a push really travels over mutual TLS and HTTP/2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mdmserver.push.instance import write_private
from mdmserver.testing.apns_pki import (
    Identity,
    issue_push_cert,
    issue_server_cert,
    make_ca,
    new_mdm_topic,
)
from mdmserver.testing.fake_apns import FakeAPNs


@dataclass(frozen=True)
class FakeApple:
    folder: Path
    topic: str

    @property
    def ca_file(self) -> Path:
        return self.folder / "apple-ca.pem"

    @property
    def push_file(self) -> Path:
        """The push certificate and its key in one PEM, as ``push-cert import`` takes it."""
        return self.folder / "push.pem"

    @classmethod
    def create(cls, folder: Path, topic: str | None = None) -> FakeApple:
        """A new CA, gateway certificate and push certificate for ``topic`` (new if None)."""
        topic = topic or new_mdm_topic()
        folder.mkdir(parents=True, exist_ok=True)
        ca = make_ca("Simulated Apple Root CA")
        gateway = issue_server_cert(ca, ("127.0.0.1", "localhost"))
        push = issue_push_cert(ca, topic)
        (folder / "apple-ca.pem").write_bytes(ca.cert_pem)
        write_private(folder / "gateway.key", gateway.key_pem)
        (folder / "gateway.pem").write_bytes(gateway.cert_pem)
        write_private(folder / "push.pem", push.cert_pem + push.key_pem)
        return cls(folder, topic)

    @classmethod
    def load(cls, folder: Path) -> FakeApple:
        from mdmserver.push.cert import push_topic

        cert = x509.load_pem_x509_certificate((folder / "push.pem").read_bytes())
        return cls(folder, push_topic(cert))

    @classmethod
    def load_or_create(cls, folder: Path, topic: str | None = None) -> FakeApple:
        return cls.load(folder) if (folder / "push.pem").is_file() else cls.create(folder, topic)

    def gateway(self, port: int = 0) -> FakeAPNs:
        """The APNs stand-in (not started), on 127.0.0.1:``port`` (0: any free port)."""
        key = serialization.load_pem_private_key((self.folder / "gateway.key").read_bytes(), None)
        cert = x509.load_pem_x509_certificate((self.folder / "gateway.pem").read_bytes())
        identity = Identity(cert, key)  # type: ignore[arg-type]
        return FakeAPNs(
            ca_pem=self.ca_file.read_bytes(),
            cert_pem=identity.cert_pem,
            key_pem=identity.key_pem,
            port=port,
            record=False,  # a long run would otherwise keep every push in memory
        )
