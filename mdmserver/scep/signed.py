"""CMS SignedData as SCEP uses it: one RSA signer, signed attributes always present.

Shared by the server (reading PKIOperations, signing CertReps) and the test client (the reverse),
so that both sides agree on what is signed: the signed attributes re-tagged as a DER SET.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from asn1crypto import cms, core
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from mdmserver.crypto import cms_sign, cms_verify
from mdmserver.crypto.errors import SignatureError
from mdmserver.scep.errors import FailInfo, ScepError

# SCEP authenticated attributes (RFC 8894 section 3.2.1.4), under VeriSign's arc.
OID_MESSAGE_TYPE = "2.16.840.1.113733.1.9.2"
OID_PKI_STATUS = "2.16.840.1.113733.1.9.3"
OID_FAIL_INFO = "2.16.840.1.113733.1.9.4"
OID_SENDER_NONCE = "2.16.840.1.113733.1.9.5"
OID_RECIPIENT_NONCE = "2.16.840.1.113733.1.9.6"
OID_TRANSACTION_ID = "2.16.840.1.113733.1.9.7"
OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
OID_SIGNING_TIME = "1.2.840.113549.1.9.5"
OID_DATA = "1.2.840.113549.1.7.1"

# SHA-1 is still accepted on input: clients that never read GetCACaps fall back to it. MD5 is not.
DIGESTS: Mapping[str, type[hashes.HashAlgorithm]] = cms_sign.DIGESTS

Attributes = Mapping[str, Sequence[core.Asn1Value]]


@dataclass(frozen=True)
class SignedParts:
    """A SignedData read but not yet verified: enough to learn who to answer before trusting it."""

    encoded: bytes  # the ContentInfo as received
    signed_data: cms.SignedData
    signer_info: cms.SignerInfo
    attributes: Attributes
    content: bytes | None
    content_type: str
    digest_algorithm: str


# One CMS builder for the whole server (crypto/cms_sign.py); SCEP's names for its parts.
to_asn1_cert = cms_sign.to_asn1
issuer_and_serial = cms_sign.issuer_and_serial
attribute = cms_sign.attribute


def read_signed(data: bytes) -> SignedParts:
    """Split a ContentInfo(SignedData) into its parts; asn1crypto errors escape to the caller."""
    info = cms.ContentInfo.load(data, strict=True)
    if info["content_type"].native != "signed_data":
        raise ScepError("not a CMS SignedData", FailInfo.badRequest)
    signed = info["content"]
    signers = signed["signer_infos"]
    if len(signers) != 1:
        raise ScepError(f"expected one signer, found {len(signers)}", FailInfo.badRequest)
    signer = signers[0]
    raw_attrs = signer["signed_attrs"]
    if not isinstance(raw_attrs, cms.CMSAttributes) or len(raw_attrs) == 0:
        raise ScepError("the signature has no signed attributes", FailInfo.badRequest)
    attributes: dict[str, list[core.Asn1Value]] = {}
    for attr in raw_attrs:
        oid = attr["type"].dotted
        if oid in attributes:
            raise ScepError(f"signed attribute {oid} appears twice", FailInfo.badRequest)
        attributes[oid] = [core.load(value.dump()) for value in attr["values"]]
    encap = signed["encap_content_info"]
    content = encap["content"].native
    if content is not None and not isinstance(content, bytes):
        raise ScepError("the signed content is not an OCTET STRING", FailInfo.badRequest)
    return SignedParts(
        encoded=data,
        signed_data=signed,
        signer_info=signer,
        attributes=attributes,
        content=content,
        content_type=encap["content_type"].dotted,
        digest_algorithm=signer["digest_algorithm"]["algorithm"].native,
    )


def single_value(attributes: Attributes, oid: str) -> core.Asn1Value | None:
    values = attributes.get(oid)
    if values is None:
        return None
    if len(values) != 1:
        raise ScepError(f"signed attribute {oid} must have one value", FailInfo.badRequest)
    return values[0]


def string_attr(attributes: Attributes, oid: str) -> str | None:
    value = single_value(attributes, oid)
    if value is None:
        return None
    if not isinstance(value, core.AbstractString):
        raise ScepError(f"signed attribute {oid} is not a string", FailInfo.badRequest)
    return str(value.native)


def octets_attr(attributes: Attributes, oid: str) -> bytes | None:
    value = single_value(attributes, oid)
    if value is None:
        return None
    if not isinstance(value, core.OctetString):
        raise ScepError(f"signed attribute {oid} is not an OCTET STRING", FailInfo.badRequest)
    return bytes(value.native)


def verify_signed(parts: SignedParts) -> x509.Certificate:
    """The signer's certificate, once SCEP's limits hold (a digest from DIGESTS, an RSA signer)
    and the signature verifies: messageDigest against the content, the RSA signature over the
    attributes' DER SET, checked by crypto/cms_verify.py as every signature this server reads."""
    if parts.digest_algorithm not in DIGESTS:
        raise ScepError(f"unsupported digest {parts.digest_algorithm}", FailInfo.badAlg)
    sig_alg = parts.signer_info["signature_algorithm"]["algorithm"].native
    if sig_alg not in ("rsassa_pkcs1v15", f"{parts.digest_algorithm}_rsa"):
        raise ScepError(f"unsupported signature algorithm {sig_alg}", FailInfo.badAlg)
    if parts.content_type != OID_DATA:
        raise ScepError("the signed content type is not data", FailInfo.badMessageCheck)
    try:
        # Absent content (a failure CertRep) is digested as empty.
        cert = cms_verify.verify_detached(parts.encoded, parts.content or b"", max_bytes=None)
    except SignatureError as exc:
        raise ScepError(str(exc), FailInfo.badMessageCheck) from None
    if not isinstance(cert.public_key(), rsa.RSAPublicKey):
        raise ScepError("the signer's key is not RSA", FailInfo.badAlg)
    if cert.issuer == cert.subject:
        # Its own signature proves nothing about the requester, but a corrupt one means the
        # message was damaged; certificates issued by others are the caller's to judge.
        try:
            cert.verify_directly_issued_by(cert)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            raise ScepError(
                "the signer's self-signed certificate does not verify", FailInfo.badMessageCheck
            ) from None
    return cert


def sign(
    content: bytes | None,
    signer_cert: x509.Certificate,
    signer_key: rsa.RSAPrivateKey,
    scep_attributes: Sequence[cms.CMSAttribute],
    *,
    digest: str = "sha256",
    certificates: Sequence[x509.Certificate] = (),
) -> bytes:
    """A DER ContentInfo(SignedData) over `content` (absent content is digested as empty)."""
    if digest not in DIGESTS:
        raise ValueError(f"unsupported digest {digest}")
    return cms_sign.signed_data(
        content,
        signer_cert,
        signer_key,
        digest=digest,
        extra_attributes=scep_attributes,
        chain=certificates,
        bare_rsa_algorithm=True,
    )


def degenerate_crl(crl_der: bytes) -> bytes:
    """A signer-less SignedData carrying one CRL: a GetCRL answer's content (RFC 8894 3.3.4)."""
    return cms_sign.degenerate(crls=[crl_der])


def degenerate_certs_only(certs: Sequence[x509.Certificate]) -> bytes:
    """A signer-less SignedData carrying certificates: how SCEP ships certificate bundles."""
    return cms_sign.degenerate(certificates=certs)
