"""CMS EnvelopedData as SCEP uses it: crypto/cms_encrypt.py's, with refusals as SCEP failInfo.

RSA PKCS#1 v1.5 key transport, CBC content encryption; single DES and 3DES stay readable for
clients that fall back to them (see crypto/cms_encrypt.py).
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from mdmserver.crypto import cms_encrypt
from mdmserver.crypto.cms_encrypt import EnvelopeError, Refusal
from mdmserver.scep.errors import FailInfo, ScepError

_FAIL_INFO = {
    Refusal.MALFORMED: FailInfo.badRequest,
    Refusal.ALGORITHM: FailInfo.badAlg,
    Refusal.NOT_FOR_US: FailInfo.badMessageCheck,
}


def envelope(plaintext: bytes, recipient: x509.Certificate, encryption: str = "aes256") -> bytes:
    """A DER ContentInfo(EnvelopedData) of `plaintext` that only `recipient`'s key opens."""
    try:
        return cms_encrypt.envelope(plaintext, recipient, encryption)
    except cms_encrypt.UnsupportedRecipient:
        raise ValueError("SCEP key transport needs an RSA recipient") from None


def open_envelope(
    data: bytes, recipient: x509.Certificate | None, recipient_key: rsa.RSAPrivateKey
) -> tuple[bytes, str]:
    """Decrypt a ContentInfo(EnvelopedData) addressed to `recipient`; returns (plaintext, cipher).

    With no `recipient`, the envelope must have a single recipient (a client that kept only its
    key). asn1crypto parsing errors escape to the caller, which knows how to report them.
    """
    try:
        return cms_encrypt.open_envelope(data, recipient, recipient_key, "this CA")
    except EnvelopeError as exc:
        raise ScepError(str(exc), _FAIL_INFO[exc.refusal]) from None
