"""Produce CMS signatures: detached ones as a device would send, attached ones for profiles.

Detached signatures are encoded here rather than by cryptography's PKCS7 builder because that
builder refuses SHA-1, and real devices sign with SHA-1; the simulator and the tests must too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from mdmserver.crypto import der
from mdmserver.crypto.ca import PrivateKey

# digest name -> (hash OID, hashlib name, RSA signature OID, ECDSA signature OID)
_ALGORITHMS: dict[str, tuple[str, str, str, str]] = {
    "sha1": ("1.3.14.3.2.26", "sha1", "1.2.840.113549.1.1.5", "1.2.840.10045.4.1"),
    "sha256": ("2.16.840.1.101.3.4.2.1", "sha256", "1.2.840.113549.1.1.11", "1.2.840.10045.4.3.2"),
    "sha384": ("2.16.840.1.101.3.4.2.2", "sha384", "1.2.840.113549.1.1.12", "1.2.840.10045.4.3.3"),
    "sha512": ("2.16.840.1.101.3.4.2.3", "sha512", "1.2.840.113549.1.1.13", "1.2.840.10045.4.3.4"),
}
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(),
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}
_ID_DATA = der.encode_oid("1.2.840.113549.1.7.1")
_ID_SIGNED_DATA = der.encode_oid("1.2.840.113549.1.7.2")
_ATTR_CONTENT_TYPE = der.encode_oid("1.2.840.113549.1.9.3")
_ATTR_MESSAGE_DIGEST = der.encode_oid("1.2.840.113549.1.9.4")
_ATTR_SIGNING_TIME = der.encode_oid("1.2.840.113549.1.9.5")
_NULL = der.encode(der.NULL, b"")


def _seq(*parts: bytes) -> bytes:
    return der.encode(der.SEQUENCE, b"".join(parts))


def _attribute(oid: bytes, value: bytes) -> bytes:
    return _seq(oid, der.encode_set_of([value]))


def sign_detached(
    content: bytes,
    cert: x509.Certificate,
    key: PrivateKey,
    *,
    signed_attributes: bool = True,
    digest: str = "sha256",
) -> bytes:
    """A DER detached SignedData over `content`, embedding `cert`, as Mdm-Signature carries.

    `digest` is sha1, sha256, sha384 or sha512; with `signed_attributes` the signature covers
    contentType, signingTime and messageDigest, otherwise the content itself."""
    return _signed_data(content, cert, key, signed_attributes=signed_attributes, digest=digest)


def sign_attached(
    content: bytes,
    cert: x509.Certificate,
    key: PrivateKey,
    *,
    digest: str = "sha256",
    chain: Sequence[x509.Certificate] = (),
) -> bytes:
    """A DER SignedData holding `content`, with signed attributes, embedding `cert` and
    `chain`: what a device posts to a profile service (its attributes, signed with SHA-1 by
    its Apple-issued identity), which cryptography's PKCS7 builder cannot produce."""
    return _signed_data(
        content, cert, key, signed_attributes=True, digest=digest, attach=True, chain=chain
    )


def _signed_data(
    content: bytes,
    cert: x509.Certificate,
    key: PrivateKey,
    *,
    signed_attributes: bool,
    digest: str,
    attach: bool = False,
    chain: Sequence[x509.Certificate] = (),
) -> bytes:
    name = digest.lower().replace("-", "")
    if name not in _ALGORITHMS:
        raise ValueError(f"unsupported digest {digest!r}; use one of {', '.join(_ALGORITHMS)}")
    hash_oid, hashlib_name, rsa_oid, ecdsa_oid = _ALGORITHMS[name]
    digest_alg = _seq(der.encode_oid(hash_oid), _NULL)
    attrs_field = b""
    to_sign = content
    if signed_attributes:
        now = datetime.now(UTC).strftime("%y%m%d%H%M%SZ").encode("ascii")
        attrs = der.encode_set_of(
            [
                _attribute(_ATTR_CONTENT_TYPE, _ID_DATA),
                _attribute(_ATTR_SIGNING_TIME, der.encode(der.UTC_TIME, now)),
                _attribute(
                    _ATTR_MESSAGE_DIGEST,
                    der.encode(der.OCTET_STRING, hashlib.new(hashlib_name, content).digest()),
                ),
            ]
        )
        to_sign = attrs
        attrs_field = b"\xa0" + attrs[1:]  # stored as [0] IMPLICIT, signed as a SET
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(to_sign, padding.PKCS1v15(), _HASHES[name])
        signature_alg = _seq(der.encode_oid(rsa_oid), _NULL)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(to_sign, ec.ECDSA(_HASHES[name]))
        signature_alg = _seq(der.encode_oid(ecdsa_oid))
    else:
        raise TypeError(f"only RSA and EC keys can sign, not {type(key).__name__}")
    signer_info = _seq(
        der.encode_integer(1),
        _seq(cert.issuer.public_bytes(), der.encode_integer(cert.serial_number)),
        digest_alg,
        attrs_field,
        signature_alg,
        der.encode(der.OCTET_STRING, signature),
    )
    encapsulated = _seq(_ID_DATA, der.encode(0xA0, der.encode(der.OCTET_STRING, content)))
    certificates = [cert, *(extra for extra in chain if extra != cert)]
    signed_data = _seq(
        der.encode_integer(1),
        der.encode_set_of([digest_alg]),
        encapsulated if attach else _seq(_ID_DATA),
        der.encode(
            0xA0, b"".join(c.public_bytes(serialization.Encoding.DER) for c in certificates)
        ),
        der.encode_set_of([signer_info]),
    )
    return _seq(_ID_SIGNED_DATA, der.encode(0xA0, signed_data))


def sign_profile(
    content: bytes,
    cert: x509.Certificate,
    key: PrivateKey,
    chain: Sequence[x509.Certificate] = (),
) -> bytes:
    """An attached DER SignedData holding `content` (a .mobileconfig), the signer certificate
    and `chain`, so a device can show who signed the profile."""
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content)
    builder = builder.add_signer(cert, key, hashes.SHA256())
    for extra in chain:
        if extra != cert:
            builder = builder.add_certificate(extra)
    # Binary: sign the bytes as given; the default S/MIME text mode would rewrite line endings.
    return builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
