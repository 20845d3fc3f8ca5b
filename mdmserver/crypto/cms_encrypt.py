"""CMS EnvelopedData: content only the holder of one certificate's private key can read.

Profiles that carry secrets (a PKCS#12 password, a Wi-Fi password) are encrypted to the
device's identity certificate. Recipients must have RSA keys (key transport); cryptography
does not build the key-agreement recipients an EC certificate would need.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7


class UnsupportedRecipient(ValueError):
    """The certificate cannot receive CMS-encrypted content from this server."""


def encrypt_to(content: bytes, recipient: x509.Certificate) -> bytes:
    """A DER EnvelopedData of `content` (AES-256-CBC, key wrapped with RSA) for `recipient`."""
    if not isinstance(recipient.public_key(), rsa.RSAPublicKey):
        raise UnsupportedRecipient(
            "only RSA certificates can be encrypted to; this one has a"
            f" {type(recipient.public_key()).__name__}"
        )
    builder = (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(content)
        .add_recipient(recipient)
        .set_content_encryption_algorithm(algorithms.AES256)
    )
    # Binary: the content is a plist, not S/MIME text; no MIME header is added.
    return builder.encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])


def decrypt(envelope: bytes, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> bytes:
    """The content of a DER EnvelopedData addressed to `cert` (tests, escrowed keys)."""
    return pkcs7.pkcs7_decrypt_der(envelope, cert, key, [])
