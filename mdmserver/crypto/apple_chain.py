"""Is a certificate an Apple-issued device identity? Judged against the Apple CA bundle an
administrator configures (``apple_device_ca_file``); Apple publishes those certificates, this
repository does not carry them.

Apple's device identity chain is old, and real devices present exactly this: RSA-1024 keys,
SHA-1 signatures, and CA certificates ("Apple iPhone Certification Authority", "Apple iPhone
Device CA") whose validity ended years ago while devices still present them, since they were
valid when the device's identity was issued at activation.

Decision: every link is checked structurally and cryptographically (issuer name, a signature
that verifies with the issuer's key, SHA-1 included, MD5 never; every issuer a CA; the chain
ends at a configured certificate), the device certificate itself must be a leaf within its
validity period, but the validity periods of the CA certificates (configured anchors and the
intermediates a device sends) are not enforced: with today's date a genuine iPhone's chain
would always fail. This relaxation lives here only; the device TrustStore for MDM identities
(mdmserver.crypto.trust) still refuses SHA-1 and expired CAs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from mdmserver.crypto.ca import load_pem_certificates
from mdmserver.crypto.errors import UntrustedCertificate

MIN_RSA_BITS = 1024  # what Apple's device identities use; anything weaker is refused
MAX_CHAIN_LENGTH = 4


def _describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or f"serial {cert.serial_number:x}"


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer`'s key signed `cert`, with any of the usual algorithms including SHA-1
    (cryptography's ``verify_directly_issued_by`` refuses SHA-1, which Apple's chain uses)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        algorithm = cert.signature_hash_algorithm
        if algorithm is None or isinstance(algorithm, hashes.MD5):
            return False
        key = issuer.public_key()
        params = cert.signature_algorithm_parameters
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < MIN_RSA_BITS or not isinstance(
                params, padding.PKCS1v15 | padding.PSS
            ):
                return False
            key.verify(cert.signature, cert.tbs_certificate_bytes, params, algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if not isinstance(params, ec.ECDSA):
                return False
            key.verify(cert.signature, cert.tbs_certificate_bytes, params)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


class AppleDeviceCAs:
    """The configured Apple device CA certificates (roots and, for devices that send only
    their own certificate, as macOS does, the intermediates too): each one is an anchor."""

    def __init__(self, cas: Sequence[x509.Certificate]) -> None:
        if not cas:
            raise ValueError("the Apple device CA bundle holds no certificate")
        self.cas = tuple(cas)

    @classmethod
    def from_pem(cls, data: bytes) -> AppleDeviceCAs:
        return cls(load_pem_certificates(data))

    def verify(
        self,
        leaf: x509.Certificate,
        intermediates: Sequence[x509.Certificate] = (),
        *,
        at: datetime | None = None,
    ) -> list[x509.Certificate]:
        """The chain from `leaf` to a configured certificate, or UntrustedCertificate."""
        when = at or datetime.now(UTC)
        if _is_ca(leaf):
            raise UntrustedCertificate(f"signer {_describe(leaf)} is a CA, not a device identity")
        if not leaf.not_valid_before_utc <= when <= leaf.not_valid_after_utc:
            start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
            raise UntrustedCertificate(
                f"device certificate {_describe(leaf)} is not valid now "
                f"(valid {start.isoformat()} to {end.isoformat()})"
            )
        chain = [leaf]
        current = leaf
        for _ in range(MAX_CHAIN_LENGTH):
            anchor = next((ca for ca in self.cas if signed_by(current, ca)), None)
            if anchor is not None:
                if not _is_ca(anchor):
                    raise UntrustedCertificate(
                        f"configured Apple certificate {_describe(anchor)} is not a CA"
                    )
                chain.append(anchor)
                return chain
            step = next(
                (c for c in intermediates if c not in chain and signed_by(current, c)), None
            )
            if step is None:
                raise UntrustedCertificate(
                    f"device certificate {_describe(leaf)} does not chain to the configured "
                    f"Apple device CAs (no issuer found for {current.issuer.rfc4514_string()})"
                )
            if not _is_ca(step):
                raise UntrustedCertificate(f"intermediate {_describe(step)} is not a CA")
            chain.append(step)
            current = step
        raise UntrustedCertificate(
            f"device certificate {_describe(leaf)} needs a chain longer than {MAX_CHAIN_LENGTH}"
        )
