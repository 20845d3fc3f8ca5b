"""CMS EnvelopedData: content only the holder of one certificate's private key can read.

Profiles that carry secrets (a PKCS#12 password, a Wi-Fi password) are encrypted to the
device's identity certificate; SCEP wraps its CSRs and issued certificates the same way. One
implementation for both: asn1crypto builds and reads the structure, cryptography does RSA
PKCS#1 v1.5 key transport and the CBC content cipher. Recipients must have RSA keys (key
transport); an EC certificate would need key-agreement recipients.

Single DES and 3DES stay supported for reading because real SCEP clients still send them when
a CA does not advertise AES; the content they protect (a CSR, an issued certificate) is not
secret, the challenge inside the CSR is single-use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import Enum

from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, CipherAlgorithm, algorithms, modes

from mdmserver.crypto.cms_sign import issuer_and_serial, to_asn1

# Our short name -> (asn1crypto algorithm name, key length in bytes).
CIPHERS: Mapping[str, tuple[str, int]] = {
    "aes128": ("aes128_cbc", 16),
    "aes192": ("aes192_cbc", 24),
    "aes256": ("aes256_cbc", 32),
    "des3": ("tripledes_3key", 24),
    "des": ("des", 8),
}
_BY_OID_NAME = {oid_name: name for name, (oid_name, _) in CIPHERS.items()}

# One message for every failure after key transport, so the key holder is no padding oracle.
UNDECRYPTABLE = "the enveloped content could not be decrypted"


class UnsupportedRecipient(ValueError):
    """The certificate cannot receive CMS-encrypted content from this server."""


class Refusal(Enum):
    """Why an envelope was not opened, in the terms SCEP's failInfo needs."""

    MALFORMED = "malformed"  # not what an envelope must be
    ALGORITHM = "algorithm"  # an algorithm this server does not do
    NOT_FOR_US = "not_for_us"  # addressed to someone else, or does not decrypt


class EnvelopeError(ValueError):
    """An EnvelopedData that cannot be opened, with the reason's category."""

    def __init__(self, message: str, refusal: Refusal) -> None:
        super().__init__(message)
        self.refusal = refusal


def _algorithm(name: str, key: bytes) -> CipherAlgorithm:
    if name == "des":
        return TripleDES(key * 3)  # single DES is 3DES with three equal keys
    if name == "des3":
        return TripleDES(key)
    return algorithms.AES(key)


def _block_bytes(name: str) -> int:
    return 8 if name.startswith("des") else 16


def envelope(plaintext: bytes, recipient: x509.Certificate, encryption: str = "aes256") -> bytes:
    """A DER ContentInfo(EnvelopedData) of `plaintext` that only `recipient`'s key opens."""
    if encryption not in CIPHERS:
        raise ValueError(f"unsupported content encryption {encryption!r}")
    oid_name, key_len = CIPHERS[encryption]
    public_key = recipient.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise UnsupportedRecipient(
            f"only RSA certificates can be encrypted to; this one has a {type(public_key).__name__}"
        )
    key = os.urandom(key_len)
    iv = os.urandom(_block_bytes(encryption))
    padder = sym_padding.PKCS7(_block_bytes(encryption) * 8).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(_algorithm(encryption, key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    recipient_info = cms.KeyTransRecipientInfo(
        {
            "version": "v0",
            "rid": cms.RecipientIdentifier(
                name="issuer_and_serial_number", value=issuer_and_serial(recipient)
            ),
            "key_encryption_algorithm": {"algorithm": "rsaes_pkcs1v15"},
            "encrypted_key": public_key.encrypt(key, padding.PKCS1v15()),
        }
    )
    enveloped = cms.EnvelopedData(
        {
            "version": "v0",
            "recipient_infos": [cms.RecipientInfo(name="ktri", value=recipient_info)],
            "encrypted_content_info": {
                "content_type": "data",
                "content_encryption_algorithm": {"algorithm": oid_name, "parameters": iv},
                "encrypted_content": ciphertext,
            },
        }
    )
    return bytes(cms.ContentInfo({"content_type": "enveloped_data", "content": enveloped}).dump())


def _is_for(rid: cms.RecipientIdentifier, cert: x509.Certificate) -> bool:
    parsed = to_asn1(cert)
    if rid.name == "issuer_and_serial_number":
        return bool(
            parsed.issuer == rid.chosen["issuer"]
            and parsed.serial_number == rid.chosen["serial_number"].native
        )
    return bool(parsed.key_identifier == rid.chosen.native)


def open_envelope(
    data: bytes,
    recipient: x509.Certificate | None,
    recipient_key: rsa.RSAPrivateKey,
    recipient_name: str = "this certificate",
) -> tuple[bytes, str]:
    """Decrypt a ContentInfo(EnvelopedData) addressed to `recipient`; returns (plaintext, cipher).

    With no `recipient`, the envelope must have a single recipient (a holder that kept only its
    key). Refusals raise `EnvelopeError`; asn1crypto's parsing errors (ValueError, TypeError)
    escape to the caller, which knows how to report them.
    """
    info = cms.ContentInfo.load(data, strict=True)
    if info["content_type"].native != "enveloped_data":
        raise EnvelopeError("the content is not a CMS EnvelopedData", Refusal.MALFORMED)
    enveloped = info["content"]
    mine = [
        ri.chosen
        for ri in enveloped["recipient_infos"]
        if ri.name == "ktri" and (recipient is None or _is_for(ri.chosen["rid"], recipient))
    ]
    if recipient is None and len(enveloped["recipient_infos"]) != 1:
        raise EnvelopeError("expected a single recipient", Refusal.MALFORMED)
    if not mine:
        raise EnvelopeError(f"the content is not encrypted to {recipient_name}", Refusal.NOT_FOR_US)
    ktri = mine[0]
    if ktri["key_encryption_algorithm"]["algorithm"].native != "rsaes_pkcs1v15":
        alg = ktri["key_encryption_algorithm"]["algorithm"].native
        raise EnvelopeError(f"unsupported key transport {alg}", Refusal.ALGORITHM)
    content_info = enveloped["encrypted_content_info"]
    alg = content_info["content_encryption_algorithm"]
    name = _BY_OID_NAME.get(alg["algorithm"].native)
    if name is None:
        raise EnvelopeError(
            f"unsupported content encryption {alg['algorithm'].native}", Refusal.ALGORITHM
        )
    iv = alg["parameters"].native
    block = _block_bytes(name)
    ciphertext = content_info["encrypted_content"].native
    if not isinstance(iv, bytes) or len(iv) != block:
        raise EnvelopeError("the content encryption IV is malformed", Refusal.MALFORMED)
    if not isinstance(ciphertext, bytes) or not ciphertext or len(ciphertext) % block:
        raise EnvelopeError(UNDECRYPTABLE, Refusal.NOT_FOR_US)
    try:
        key = recipient_key.decrypt(ktri["encrypted_key"].native, padding.PKCS1v15())
        if len(key) != CIPHERS[name][1]:
            raise ValueError("wrong key length")
        decryptor = Cipher(_algorithm(name, key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        unpadder = sym_padding.PKCS7(block * 8).unpadder()
        return unpadder.update(padded) + unpadder.finalize(), name
    except ValueError:
        raise EnvelopeError(UNDECRYPTABLE, Refusal.NOT_FOR_US) from None


def encrypt_to(content: bytes, recipient: x509.Certificate) -> bytes:
    """A DER EnvelopedData of `content` (AES-256-CBC, key wrapped with RSA) for `recipient`."""
    return envelope(content, recipient, "aes256")


def decrypt(data: bytes, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> bytes:
    """The content of a DER EnvelopedData addressed to `cert` (tests, escrowed keys); a
    ValueError when it cannot be opened."""
    try:
        return open_envelope(data, cert, key)[0]
    except (ValueError, TypeError) as exc:
        raise ValueError(f"cannot decrypt: {exc}") from None
