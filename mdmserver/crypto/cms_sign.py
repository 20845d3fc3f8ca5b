"""Produce CMS SignedData: detached signatures as a device sends them, attached ones for
profiles, a device's profile-service attributes and SCEP messages.

asn1crypto builds the structure, cryptography signs. One builder for every use, so what this
server signs and what `cms_verify` reads agree on one encoding: the signed attributes are a
DER SET (sorted), stored as [0] IMPLICIT in the SignerInfo. cryptography's own PKCS7 builder is
not used: it refuses SHA-1, which real devices sign with (the simulator and tests must too).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from asn1crypto import cms
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from mdmserver.crypto.ca import PrivateKey

# The digests signatures may use, by the name asn1crypto and hashlib share.
DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def to_asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    """The certificate as asn1crypto's object (built from its exact DER)."""
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def issuer_and_serial(cert: x509.Certificate) -> cms.IssuerAndSerialNumber:
    parsed = to_asn1(cert)
    return cms.IssuerAndSerialNumber(
        {"issuer": parsed.issuer, "serial_number": parsed.serial_number}
    )


def attribute(oid: str, value: object) -> cms.CMSAttribute:
    """One single-valued signed attribute (an asn1crypto value, or a native one for CMS's)."""
    return cms.CMSAttribute({"type": oid, "values": [value]})


def sign_detached(
    content: bytes,
    cert: x509.Certificate,
    key: PrivateKey,
    *,
    signed_attributes: bool = True,
    digest: str = "sha256",
) -> bytes:
    """A DER detached SignedData over `content`, embedding `cert`, as Mdm-Signature carries.

    `digest` is sha1, sha224, sha256, sha384 or sha512; with `signed_attributes` the signature
    covers contentType, signingTime and messageDigest, otherwise the content itself."""
    return signed_data(
        content, cert, key, digest=digest, attach=False, signed_attributes=signed_attributes
    )


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
    its Apple-issued identity)."""
    return signed_data(content, cert, key, digest=digest, chain=chain)


def sign_profile(
    content: bytes,
    cert: x509.Certificate,
    key: PrivateKey,
    chain: Sequence[x509.Certificate] = (),
) -> bytes:
    """An attached DER SignedData holding `content` (a .mobileconfig) as given, byte for byte,
    with the signer certificate and `chain`, so a device can show who signed the profile."""
    return signed_data(content, cert, key, digest="sha256", chain=chain)


def signed_data(
    content: bytes | None,
    cert: x509.Certificate,
    key: PrivateKey,
    *,
    digest: str = "sha256",
    attach: bool = True,
    signed_attributes: bool = True,
    extra_attributes: Sequence[cms.CMSAttribute] = (),
    chain: Sequence[x509.Certificate] = (),
    bare_rsa_algorithm: bool = False,
) -> bytes:
    """A DER ContentInfo(SignedData) by `cert`'s `key` over `content` (absent content is
    digested as empty, as SCEP's failure replies need), carrying it when `attach`.

    The signed attributes are contentType, messageDigest and signingTime, then
    `extra_attributes` (SCEP's). The embedded certificates are `cert`, then `chain`.
    `bare_rsa_algorithm` names RSA signatures rsaEncryption, as SCEP peers expect, rather than
    the sha*WithRSAEncryption a device uses."""
    name = digest.lower().replace("-", "")
    hash_class = DIGESTS.get(name)
    if hash_class is None:
        raise ValueError(f"unsupported digest {digest!r}; use one of {', '.join(DIGESTS)}")
    body = content or b""
    info: dict[str, object] = {
        "version": "v1",
        "sid": cms.SignerIdentifier(name="issuer_and_serial_number", value=issuer_and_serial(cert)),
        "digest_algorithm": {"algorithm": name},
    }
    to_sign = body
    if signed_attributes:
        hasher = hashes.Hash(hash_class())
        hasher.update(body)
        attrs = cms.CMSAttributes(
            [
                attribute("1.2.840.113549.1.9.3", "data"),  # contentType
                attribute("1.2.840.113549.1.9.4", hasher.finalize()),  # messageDigest
                attribute(  # signingTime
                    "1.2.840.113549.1.9.5", cms.Time(name="utc_time", value=datetime.now(UTC))
                ),
                *extra_attributes,
            ]
        )
        to_sign = attrs.dump()  # the DER SET (sorted); stored below as [0] IMPLICIT
        info["signed_attrs"] = attrs
    elif extra_attributes:
        raise ValueError("extra attributes need signed attributes")
    if isinstance(key, rsa.RSAPrivateKey):
        info["signature"] = key.sign(to_sign, padding.PKCS1v15(), hash_class())
        algorithm = "rsassa_pkcs1v15" if bare_rsa_algorithm else f"{name}_rsa"
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        info["signature"] = key.sign(to_sign, ec.ECDSA(hash_class()))
        algorithm = f"{name}_ecdsa"
    else:
        raise TypeError(f"only RSA and EC keys can sign, not {type(key).__name__}")
    info["signature_algorithm"] = {"algorithm": algorithm}
    encapsulated: dict[str, object] = {"content_type": "data"}
    if attach and content is not None:
        encapsulated["content"] = content
    certificates = [cert, *(extra for extra in chain if extra != cert)]
    signed = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": name}],
            "encap_content_info": encapsulated,
            "certificates": [to_asn1(c) for c in certificates],
            "signer_infos": [cms.SignerInfo(info)],
        }
    )
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())


def degenerate(certificates: Sequence[x509.Certificate] = (), crls: Sequence[bytes] = ()) -> bytes:
    """A signer-less SignedData carrying certificates or DER CRLs: how SCEP ships a bundle."""
    fields: dict[str, object] = {
        "version": "v1",
        "digest_algorithms": [],
        "encap_content_info": {"content_type": "data"},
        "signer_infos": [],
    }
    if certificates:
        fields["certificates"] = [to_asn1(c) for c in certificates]
    if crls:
        fields["crls"] = [
            cms.RevocationInfoChoice(name="crl", value=asn1_crl.CertificateList.load(der))
            for der in crls
        ]
    signed = cms.SignedData(fields)
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())
