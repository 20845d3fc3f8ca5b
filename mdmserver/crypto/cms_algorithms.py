"""The digest and signature algorithms a CMS SignerInfo may name, and how to check each.

Kept apart from the parser so adding an algorithm touches one table, not the parsing code.
The structures come parsed by asn1crypto; OIDs are compared in dotted form, so an algorithm
asn1crypto has no name for is still reported exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from mdmserver.crypto.errors import SignatureError

_SHA1 = "1.3.14.3.2.26"
_MGF1 = "1.2.840.113549.1.1.8"
_RSA_PSS = "1.2.840.113549.1.1.10"


class HashObject(Protocol):
    """What hashlib constructors return (hashlib's own type is private)."""

    def digest(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Digest:
    """A digest algorithm: a display name, a fast hashlib constructor, cryptography's object."""

    name: str
    new: Callable[[bytes], HashObject]
    algorithm: hashes.HashAlgorithm


DIGESTS: dict[str, Digest] = {
    _SHA1: Digest("SHA-1", hashlib.sha1, hashes.SHA1()),
    "2.16.840.1.101.3.4.2.4": Digest("SHA-224", hashlib.sha224, hashes.SHA224()),
    "2.16.840.1.101.3.4.2.1": Digest("SHA-256", hashlib.sha256, hashes.SHA256()),
    "2.16.840.1.101.3.4.2.2": Digest("SHA-384", hashlib.sha384, hashes.SHA384()),
    "2.16.840.1.101.3.4.2.3": Digest("SHA-512", hashlib.sha512, hashes.SHA512()),
}

# Signature algorithm OID -> key family. Signers name either the bare key algorithm or a
# "hash-with-key" OID; the hash actually used is the SignerInfo's digestAlgorithm either way.
_RSA = "RSA"
_EC = "EC"
SIGNATURE_FAMILIES: dict[str, str] = {
    "1.2.840.113549.1.1.1": _RSA,  # rsaEncryption
    "1.2.840.113549.1.1.5": _RSA,  # sha1WithRSAEncryption
    "1.2.840.113549.1.1.14": _RSA,  # sha224WithRSAEncryption
    "1.2.840.113549.1.1.11": _RSA,  # sha256WithRSAEncryption
    "1.2.840.113549.1.1.12": _RSA,  # sha384WithRSAEncryption
    "1.2.840.113549.1.1.13": _RSA,  # sha512WithRSAEncryption
    _RSA_PSS: _RSA,
    "1.2.840.10045.2.1": _EC,  # id-ecPublicKey
    "1.2.840.10045.4.1": _EC,  # ecdsa-with-SHA1
    "1.2.840.10045.4.3.1": _EC,  # ecdsa-with-SHA224
    "1.2.840.10045.4.3.2": _EC,  # ecdsa-with-SHA256
    "1.2.840.10045.4.3.3": _EC,  # ecdsa-with-SHA384
    "1.2.840.10045.4.3.4": _EC,  # ecdsa-with-SHA512
}

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
Verifier = Callable[[bytes, bytes], None]


def digest_algorithm(algorithm: Any) -> Digest:
    """The digest an asn1crypto `algos.DigestAlgorithm` names."""
    oid = algorithm["algorithm"].dotted
    digest = DIGESTS.get(oid)
    if digest is None:
        raise SignatureError(f"unsupported digest algorithm {oid}")
    return digest


def make_verifier(algorithm: Any, digest: Digest, key: PublicKey) -> Verifier:
    """A function checking a signature with the algorithm an asn1crypto
    `algos.SignedDigestAlgorithm` names."""
    oid = algorithm["algorithm"].dotted
    family = SIGNATURE_FAMILIES.get(oid)
    if family is None:
        raise SignatureError(f"unsupported signature algorithm {oid}")
    if family == _EC:
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise SignatureError("an ECDSA signature algorithm does not fit the signer's RSA key")
        ecdsa = ec.ECDSA(digest.algorithm)
        return lambda signature, signed: key.verify(signature, signed, ecdsa)
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError("an RSA signature algorithm does not fit the signer's EC key")
    pad: padding.AsymmetricPadding = padding.PKCS1v15()
    if oid == _RSA_PSS:
        pad = pss_padding(algorithm["parameters"], digest)
    hash_algorithm = digest.algorithm
    return lambda signature, signed: key.verify(signature, signed, pad, hash_algorithm)


def pss_padding(params: Any, digest: Digest) -> padding.PSS:
    """RSASSA-PSS-params (asn1crypto fills in RFC 4055's defaults: SHA-1, MGF1-SHA-1, 20)."""
    if params.native is None:  # parameters left out altogether: every default
        hash_oid, mgf_oid, mgf_hash_oid, salt = _SHA1, _MGF1, _SHA1, 20
    else:
        hash_oid = params["hash_algorithm"]["algorithm"].dotted
        mgf = params["mask_gen_algorithm"]
        mgf_oid = mgf["algorithm"].dotted
        mgf_params = mgf["parameters"]
        mgf_hash_oid = mgf_params["algorithm"].dotted if mgf_params.native is not None else ""
        salt = params["salt_length"].native
    if DIGESTS.get(hash_oid) != digest:
        raise SignatureError("the RSASSA-PSS hash differs from the SignerInfo digestAlgorithm")
    if mgf_oid != _MGF1 or not mgf_hash_oid:
        raise SignatureError("only MGF1 is supported for RSASSA-PSS")
    mgf_digest = DIGESTS.get(mgf_hash_oid)
    if mgf_digest is None:
        raise SignatureError("unsupported MGF1 hash in RSASSA-PSS parameters")
    if not isinstance(salt, int) or not 0 <= salt <= 1024:
        raise SignatureError("the RSASSA-PSS salt length is malformed or absurd")
    return padding.PSS(mgf=padding.MGF1(mgf_digest.algorithm), salt_length=salt)
