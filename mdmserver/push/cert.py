"""The MDM push certificate's lifecycle: load it, read its topic and expiry, renew it safely.

Every enrolled device is bound to the push topic (the certificate subject's UID), so renewing
with a certificate for another topic strands them all: that is refused unless forced. Getting a
certificate from Apple needs a CSR signed by an MDM vendor certificate, wrapped in the plist
Apple's Push Certificates Portal accepts.
"""

from __future__ import annotations

import base64
import datetime as dt
import plistlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

MDM_TOPIC_PREFIX = "com.apple.mgmt."


class PushCertificateError(ValueError):
    """A push certificate, key or request that cannot be used as given."""


class TopicChangeError(PushCertificateError):
    """A renewal would change the push topic and strand every enrolled device."""


@dataclass(frozen=True)
class PushCertificate:
    """An APNs MDM push certificate with its private key."""

    cert: x509.Certificate
    key: PrivateKeyTypes
    topic: str
    not_after: dt.datetime

    def days_left(self, now: dt.datetime | None = None) -> int:
        """Whole days until expiry (negative once expired)."""
        now = now or dt.datetime.now(dt.UTC)
        if now.tzinfo is None:
            raise PushCertificateError("days_left needs an aware datetime (UTC)")
        return (self.not_after - now).days

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


def load_push_certificate(
    data: bytes, password: bytes | None = None, known_keys: Sequence[bytes] = ()
) -> PushCertificate:
    """Load a push certificate and key from PEM (both in one blob) or PKCS#12.

    Apple's portal hands out the certificate alone (PEM): its key is then the one of
    ``known_keys`` (PEM, e.g. the key ``push-cert csr`` made) that it belongs to.
    """
    if not isinstance(data, bytes) or not data:
        raise PushCertificateError("push certificate data must be non-empty bytes")
    if b"-----BEGIN" in data and b"PRIVATE KEY-----" not in data and known_keys:
        cert, key = _pair_with_known_key(data, known_keys)
    elif b"-----BEGIN" in data:
        cert, key = _load_pem(data, password)
    else:
        cert, key = _load_pkcs12(data, password)
    if not _same_public_key(cert, key):
        raise PushCertificateError("the private key does not belong to the push certificate")
    topic = push_topic(cert)
    return PushCertificate(cert=cert, key=key, topic=topic, not_after=cert.not_valid_after_utc)


def push_topic(cert: x509.Certificate) -> str:
    """The certificate's push topic: its subject UID, which must be an MDM topic."""
    uids = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    if not uids:
        raise PushCertificateError("certificate subject has no UID, so it has no push topic")
    topic = str(uids[0].value)
    if not topic.startswith(MDM_TOPIC_PREFIX):
        raise PushCertificateError(
            f"certificate topic {topic!r} is not an MDM push topic ({MDM_TOPIC_PREFIX}...)"
        )
    return topic


def check_renewal(
    old: PushCertificate,
    new: PushCertificate,
    *,
    force: bool,
    now: dt.datetime | None = None,
) -> None:
    """Refuse a replacement that would strand devices (other topic) or is already expired."""
    if new.days_left(now) < 0:
        raise PushCertificateError(f"the new push certificate expired on {new.not_after:%Y-%m-%d}")
    if new.topic != old.topic and not force:
        raise TopicChangeError(
            f"the new push certificate is for topic {new.topic!r}, the current one for "
            f"{old.topic!r}: enrolled devices only listen on the old topic and would have to "
            "re-enroll; renew the existing certificate in Apple's portal, or force the change"
        )


def create_push_csr(common_name: str) -> tuple[bytes, bytes]:
    """A new RSA-2048 key and a CSR for it (PEM each), to send to the MDM vendor."""
    if not isinstance(common_name, str) or not common_name.strip():
        raise PushCertificateError("the CSR common name must be a non-empty string")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, csr.public_bytes(serialization.Encoding.PEM)


def vendor_sign_request(
    csr_pem: bytes,
    vendor_cert: bytes,
    vendor_key: bytes,
    vendor_chain_pem: bytes,
    *,
    vendor_key_password: bytes | None = None,
) -> bytes:
    """The base64 plist to upload to Apple's Push Certificates Portal for this CSR.

    The plist holds the CSR (base64 DER), the vendor certificate followed by the given chain
    (PEM), and the vendor key's RSA PKCS#1 v1.5 SHA-256 signature over the CSR DER (base64).
    """
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except (TypeError, ValueError) as exc:
        raise PushCertificateError(f"the CSR is not a PEM certificate request: {exc}") from exc
    if not csr.is_signature_valid:
        raise PushCertificateError("the CSR's self-signature does not verify")
    cert = _load_one_pem_cert(vendor_cert, "MDM vendor certificate")
    key = _load_pem_key(vendor_key, vendor_key_password, "MDM vendor key")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PushCertificateError("the MDM vendor key must be an RSA key")
    if not _same_public_key(cert, key):
        raise PushCertificateError("the MDM vendor key does not belong to the vendor certificate")
    chain = _load_pem_chain(vendor_chain_pem)
    csr_der = csr.public_bytes(serialization.Encoding.DER)
    signature = key.sign(csr_der, padding.PKCS1v15(), hashes.SHA256())
    pem_chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert, *chain)).decode(
        "ascii"
    )
    request = {
        "PushCertRequestCSR": base64.b64encode(csr_der).decode("ascii"),
        "PushCertCertificateChain": pem_chain,
        "PushCertSignature": base64.b64encode(signature).decode("ascii"),
    }
    return base64.b64encode(plistlib.dumps(request, fmt=plistlib.FMT_XML))


def verify_vendor_request(encoded: bytes) -> x509.CertificateSigningRequest:
    """Decode a vendor-signed request and check its signature; return the CSR inside."""
    try:
        request = plistlib.loads(base64.b64decode(encoded, validate=True))
        csr_der = base64.b64decode(request["PushCertRequestCSR"], validate=True)
        signature = base64.b64decode(request["PushCertSignature"], validate=True)
        chain = x509.load_pem_x509_certificates(request["PushCertCertificateChain"].encode())
        csr = x509.load_der_x509_csr(csr_der)
    except (ValueError, TypeError, KeyError, plistlib.InvalidFileException) as exc:
        raise PushCertificateError(f"not a vendor-signed push certificate request: {exc}") from exc
    public_key = chain[0].public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise PushCertificateError("the vendor certificate in the request is not RSA")
    try:
        public_key.verify(signature, csr_der, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise PushCertificateError("the vendor signature over the CSR does not verify") from exc
    return csr


def _load_pem(data: bytes, password: bytes | None) -> tuple[x509.Certificate, PrivateKeyTypes]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise PushCertificateError(f"no readable certificate in the PEM data: {exc}") from exc
    key = _load_pem_key(data, password, "push certificate key")
    for cert in certs:  # the blob may carry the chain too: take the key's certificate
        if _same_public_key(cert, key):
            return cert, key
    return certs[0], key


def _pair_with_known_key(
    data: bytes, known_keys: Sequence[bytes]
) -> tuple[x509.Certificate, PrivateKeyTypes]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise PushCertificateError(f"no readable certificate in the PEM data: {exc}") from exc
    for key_pem in known_keys:
        key = _load_pem_key(key_pem, None, "push certificate key")
        for cert in certs:
            if _same_public_key(cert, key):
                return cert, key
    raise PushCertificateError(
        "the certificate belongs to none of the keys in this instance (the one `push-cert "
        "csr` made, or the installed one): import it on the instance that made its CSR"
    )


def _load_pkcs12(data: bytes, password: bytes | None) -> tuple[x509.Certificate, PrivateKeyTypes]:
    try:
        key, cert, _ = pkcs12.load_key_and_certificates(data, password)
    except (ValueError, TypeError) as exc:
        raise PushCertificateError(
            f"not a readable PKCS#12 file (or wrong password): {exc}"
        ) from exc
    if cert is None or key is None:
        raise PushCertificateError("the PKCS#12 file must hold both the certificate and its key")
    return cert, key


def _load_pem_key(data: bytes, password: bytes | None, what: str) -> PrivateKeyTypes:
    if b"PRIVATE KEY-----" not in data:
        raise PushCertificateError(
            f"no {what} in the PEM data (and none in the instance): run `mdmserver push-cert "
            "csr` first and import the certificate Apple issues for that request, or import "
            "a PEM with its key or a PKCS#12 file"
        )
    try:
        return serialization.load_pem_private_key(data, password)
    except (ValueError, TypeError) as exc:
        raise PushCertificateError(f"cannot read the {what} (or wrong password): {exc}") from exc


def _load_one_pem_cert(data: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(data)
    except (ValueError, TypeError) as exc:
        raise PushCertificateError(f"the {what} is not a PEM certificate: {exc}") from exc


def _load_pem_chain(data: bytes) -> list[x509.Certificate]:
    if not data or not data.strip():
        raise PushCertificateError("the vendor chain (Apple intermediate and root) is empty")
    try:
        return x509.load_pem_x509_certificates(data)
    except (ValueError, TypeError) as exc:
        raise PushCertificateError(f"the vendor chain is not PEM certificates: {exc}") from exc


def _same_public_key(cert: x509.Certificate, key: PrivateKeyTypes) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    try:
        ours = key.public_key().public_bytes(serialization.Encoding.DER, spki)
    except (AttributeError, ValueError):
        return False
    return cert.public_key().public_bytes(serialization.Encoding.DER, spki) == ours
