"""The digest and signature algorithms a CMS SignerInfo may name, and how to check each.

Kept apart from the parser so adding an algorithm touches one table, not the parsing code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from mdmserver.crypto import der
from mdmserver.crypto.errors import SignatureError


def oid_content(dotted: str) -> bytes:
    """The content octets of an OID, the form compared against parsed bytes."""
    return der.encode_oid(dotted)[2:]


_oid = oid_content
_MGF1 = _oid("1.2.840.113549.1.1.8")
_RSA_PSS = _oid("1.2.840.113549.1.1.10")


class HashObject(Protocol):
    """What hashlib constructors return (hashlib's own type is private)."""

    def digest(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Digest:
    """A digest algorithm: a display name, a fast hashlib constructor, cryptography's object."""

    name: str
    new: Callable[[bytes], HashObject]
    algorithm: hashes.HashAlgorithm


DIGESTS: dict[bytes, Digest] = {
    _oid("1.3.14.3.2.26"): Digest("SHA-1", hashlib.sha1, hashes.SHA1()),
    _oid("2.16.840.1.101.3.4.2.4"): Digest("SHA-224", hashlib.sha224, hashes.SHA224()),
    _oid("2.16.840.1.101.3.4.2.1"): Digest("SHA-256", hashlib.sha256, hashes.SHA256()),
    _oid("2.16.840.1.101.3.4.2.2"): Digest("SHA-384", hashlib.sha384, hashes.SHA384()),
    _oid("2.16.840.1.101.3.4.2.3"): Digest("SHA-512", hashlib.sha512, hashes.SHA512()),
}

# Signature algorithm OID -> key family. Signers name either the bare key algorithm or a
# "hash-with-key" OID; the hash actually used is the SignerInfo's digestAlgorithm either way.
_RSA = "RSA"
_EC = "EC"
SIGNATURE_FAMILIES: dict[bytes, str] = {
    _oid("1.2.840.113549.1.1.1"): _RSA,  # rsaEncryption
    _oid("1.2.840.113549.1.1.5"): _RSA,  # sha1WithRSAEncryption
    _oid("1.2.840.113549.1.1.14"): _RSA,  # sha224WithRSAEncryption
    _oid("1.2.840.113549.1.1.11"): _RSA,  # sha256WithRSAEncryption
    _oid("1.2.840.113549.1.1.12"): _RSA,  # sha384WithRSAEncryption
    _oid("1.2.840.113549.1.1.13"): _RSA,  # sha512WithRSAEncryption
    _RSA_PSS: _RSA,
    _oid("1.2.840.10045.2.1"): _EC,  # id-ecPublicKey
    _oid("1.2.840.10045.4.1"): _EC,  # ecdsa-with-SHA1
    _oid("1.2.840.10045.4.3.1"): _EC,  # ecdsa-with-SHA224
    _oid("1.2.840.10045.4.3.2"): _EC,  # ecdsa-with-SHA256
    _oid("1.2.840.10045.4.3.3"): _EC,  # ecdsa-with-SHA384
    _oid("1.2.840.10045.4.3.4"): _EC,  # ecdsa-with-SHA512
}

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
Verifier = Callable[[bytes, bytes], None]


def algorithm_identifier(data: bytes, tlv: der.Tlv, what: str) -> tuple[bytes, list[der.Tlv]]:
    """(OID content octets, parameter elements) of an AlgorithmIdentifier."""
    if tlv.tag != der.SEQUENCE:
        raise SignatureError(f"{what} is not an AlgorithmIdentifier")
    parts = der.children(data, tlv)
    if not parts or parts[0].tag != der.OID:
        raise SignatureError(f"{what} has no algorithm OID")
    return data[parts[0].body : parts[0].end], parts[1:]


def digest_algorithm(data: bytes, tlv: der.Tlv) -> Digest:
    oid, _ = algorithm_identifier(data, tlv, "digestAlgorithm")
    digest = DIGESTS.get(oid)
    if digest is None:
        raise SignatureError(f"unsupported digest algorithm {der.decode_oid(oid)}")
    return digest


def make_verifier(data: bytes, tlv: der.Tlv, digest: Digest, key: PublicKey) -> Verifier:
    """A function checking a signature with the algorithm the SignerInfo names."""
    oid, params = algorithm_identifier(data, tlv, "signatureAlgorithm")
    family = SIGNATURE_FAMILIES.get(oid)
    if family is None:
        raise SignatureError(f"unsupported signature algorithm {der.decode_oid(oid)}")
    if family == _EC:
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise SignatureError("an ECDSA signature algorithm does not fit the signer's RSA key")
        ecdsa = ec.ECDSA(digest.algorithm)
        return lambda signature, signed: key.verify(signature, signed, ecdsa)
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError("an RSA signature algorithm does not fit the signer's EC key")
    pad: padding.AsymmetricPadding = padding.PKCS1v15()
    if oid == _RSA_PSS:
        pad = pss_padding(data, params, digest)
    algorithm = digest.algorithm
    return lambda signature, signed: key.verify(signature, signed, pad, algorithm)


def pss_padding(data: bytes, params: list[der.Tlv], digest: Digest) -> padding.PSS:
    """RSASSA-PSS-params: hash [0], mask generation [1], salt length [2]; absent means SHA-1,
    MGF1-SHA-1 and 20, per RFC 4055."""
    fields = {t.tag: t for t in der.children(data, params[0])} if params else {}
    hash_oid = _explicit_algorithm(data, fields.get(0xA0))
    if (DIGESTS.get(hash_oid) if hash_oid else DIGESTS[_oid("1.3.14.3.2.26")]) != digest:
        raise SignatureError("the RSASSA-PSS hash differs from the SignerInfo digestAlgorithm")
    mgf_hash: hashes.HashAlgorithm = hashes.SHA1()
    if 0xA1 in fields:
        mgf = der.children(data, fields[0xA1])
        mgf_oid, mgf_params = algorithm_identifier(data, mgf[0], "maskGenAlgorithm")
        if mgf_oid != _MGF1 or not mgf_params:
            raise SignatureError("only MGF1 is supported for RSASSA-PSS")
        mgf_digest = DIGESTS.get(algorithm_identifier(data, mgf_params[0], "MGF1 hash")[0])
        if mgf_digest is None:
            raise SignatureError("unsupported MGF1 hash in RSASSA-PSS parameters")
        mgf_hash = mgf_digest.algorithm
    salt = 20
    if 0xA2 in fields:
        salt_tlv = der.children(data, fields[0xA2])[0]
        salt = int.from_bytes(data[salt_tlv.body : salt_tlv.end], "big")
        if salt_tlv.tag != der.INTEGER or salt > 1024:
            raise SignatureError("the RSASSA-PSS salt length is malformed or absurd")
    return padding.PSS(mgf=padding.MGF1(mgf_hash), salt_length=salt)


def _explicit_algorithm(data: bytes, tlv: der.Tlv | None) -> bytes | None:
    if tlv is None:
        return None
    inner = der.children(data, tlv)
    if len(inner) != 1:
        raise SignatureError("RSASSA-PSS parameters are malformed")
    return algorithm_identifier(data, inner[0], "RSASSA-PSS hash")[0]
