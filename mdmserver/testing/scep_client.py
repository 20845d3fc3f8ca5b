"""A SCEP requester, as a device's SCEP payload drives it: for tests and the device simulator.

It reuses the server's CMS building blocks; tests cross-check both against the openssl CLI and a
captured mdmclient message so that a shared mistake would not go unnoticed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import cms, core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import AttributeOID, NameOID

from mdmserver.scep.envelope import envelope, open_envelope
from mdmserver.scep.errors import FailInfo, ScepError
from mdmserver.scep.message import MessageType, PkiStatus
from mdmserver.scep.signed import (
    OID_FAIL_INFO,
    OID_MESSAGE_TYPE,
    OID_PKI_STATUS,
    OID_RECIPIENT_NONCE,
    OID_SENDER_NONCE,
    OID_TRANSACTION_ID,
    attribute,
    issuer_and_serial,
    octets_attr,
    read_signed,
    sign,
    string_attr,
    verify_signed,
)


@dataclass(frozen=True)
class CertRepResult:
    """What a device learns from a CertRep."""

    status: PkiStatus
    fail_info: FailInfo | None
    certificate: x509.Certificate | None
    transaction_id: str
    recipient_nonce: bytes
    content_encryption: str | None


def make_csr(
    key: rsa.RSAPrivateKey,
    common_name: str,
    challenge: str | None,
    *,
    printable_challenge: bool = False,
) -> x509.CertificateSigningRequest:
    """A PKCS#10 request; the challenge goes in as UTF8String, or PrintableString if asked."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    )
    if challenge is not None:
        tag = _ASN1Type.PrintableString if printable_challenge else _ASN1Type.UTF8String
        builder = builder.add_attribute(
            AttributeOID.CHALLENGE_PASSWORD, challenge.encode(), _tag=tag
        )
    return builder.sign(key, hashes.SHA256())


def self_signed_for_scep(key: rsa.RSAPrivateKey, common_name: str) -> x509.Certificate:
    """The throwaway certificate a requester signs its first PKCSReq with (RFC 8894 2.3)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )


def transaction_id_for(csr: x509.CertificateSigningRequest) -> str:
    """RFC 8894 suggests a hash of the requester's public key, in hex."""
    spki = csr.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest().upper()


def build_pkcs_req(
    csr: x509.CertificateSigningRequest,
    signer_cert: x509.Certificate,
    signer_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    *,
    message_type: MessageType = MessageType.PKCSReq,
    encryption: str = "aes128",
    digest: str = "sha256",
) -> tuple[bytes, str, bytes]:
    """A PKIOperation body; returns it with its transaction id and sender nonce."""
    if message_type not in (MessageType.PKCSReq, MessageType.RenewalReq):
        raise ValueError(f"build_pkcs_req cannot build {message_type!r}")
    transaction_id = transaction_id_for(csr)
    nonce = os.urandom(16)
    enveloped = envelope(csr.public_bytes(serialization.Encoding.DER), ca_cert, encryption)
    attrs = [
        attribute(OID_MESSAGE_TYPE, core.PrintableString(str(int(message_type)))),
        attribute(OID_TRANSACTION_ID, core.PrintableString(transaction_id)),
        attribute(OID_SENDER_NONCE, core.OctetString(nonce)),
    ]
    body = sign(enveloped, signer_cert, signer_key, attrs, digest=digest)
    return body, transaction_id, nonce


def build_get_crl(
    issued: x509.Certificate,
    signer_cert: x509.Certificate,
    signer_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
) -> bytes:
    """A GetCRL PKIOperation asking for the CRL that covers `issued` (RFC 8894 3.3.4)."""
    enveloped = envelope(issuer_and_serial(issued).dump(), ca_cert, "aes128")
    attrs = [
        attribute(OID_MESSAGE_TYPE, core.PrintableString(str(int(MessageType.GetCRL)))),
        attribute(OID_TRANSACTION_ID, core.PrintableString(os.urandom(8).hex().upper())),
        attribute(OID_SENDER_NONCE, core.OctetString(os.urandom(16))),
    ]
    return sign(enveloped, signer_cert, signer_key, attrs, digest="sha256")


def crl_of_cert_rep(
    data: bytes, ca_cert: x509.Certificate, requester_key: rsa.RSAPrivateKey
) -> x509.CertificateRevocationList:
    """The CRL a SUCCESS CertRep answering a GetCRL carries (signed by the CA, checked)."""
    parts = read_signed(data)
    if verify_signed(parts) != ca_cert:
        raise ScepError("the CertRep is not signed by the CA", FailInfo.badMessageCheck)
    if string_attr(parts.attributes, OID_PKI_STATUS) != str(int(PkiStatus.SUCCESS)):
        raise ScepError("the GetCRL was refused", FailInfo.badRequest)
    if parts.content is None:
        raise ScepError("a SUCCESS CertRep without content", FailInfo.badRequest)
    bundle, _ = open_envelope(parts.content, None, requester_key)
    crls = cms.ContentInfo.load(bundle)["content"]["crls"]
    if crls is None or len(crls) != 1:
        raise ScepError("expected one CRL in the CertRep", FailInfo.badRequest)
    return x509.load_der_x509_crl(crls[0].chosen.dump())


def _issued_certificate(bundle: bytes) -> x509.Certificate:
    info = cms.ContentInfo.load(bundle)
    if info["content_type"].native != "signed_data":
        raise ScepError("the CertRep content is not a certificate bundle", FailInfo.badRequest)
    certs = [c.chosen for c in info["content"]["certificates"] or [] if c.name == "certificate"]
    if len(certs) != 1:
        raise ScepError(f"expected one issued certificate, got {len(certs)}", FailInfo.badRequest)
    return x509.load_der_x509_certificate(certs[0].dump())


def parse_cert_rep(
    data: bytes,
    ca_cert: x509.Certificate,
    requester_key: rsa.RSAPrivateKey,
    *,
    transaction_id: str | None = None,
    sender_nonce: bytes | None = None,
) -> CertRepResult:
    """Verify a CertRep as a device would; given the request's values, check they are echoed."""
    parts = read_signed(data)
    signer = verify_signed(parts)
    if signer != ca_cert:
        raise ScepError("the CertRep is not signed by the CA", FailInfo.badMessageCheck)
    if string_attr(parts.attributes, OID_MESSAGE_TYPE) != str(int(MessageType.CertRep)):
        raise ScepError("not a CertRep", FailInfo.badRequest)
    got_transaction = string_attr(parts.attributes, OID_TRANSACTION_ID) or ""
    got_nonce = octets_attr(parts.attributes, OID_RECIPIENT_NONCE) or b""
    if transaction_id is not None and got_transaction != transaction_id:
        raise ScepError("the CertRep answers another transaction", FailInfo.badRequest)
    if sender_nonce is not None and got_nonce != sender_nonce:
        raise ScepError("the CertRep does not echo our nonce", FailInfo.badRequest)
    status = PkiStatus(int(string_attr(parts.attributes, OID_PKI_STATUS) or "-1"))
    raw_fail = string_attr(parts.attributes, OID_FAIL_INFO)
    fail_info = FailInfo(int(raw_fail)) if raw_fail is not None else None
    certificate = None
    cipher = None
    if status == PkiStatus.SUCCESS:
        if parts.content is None:
            raise ScepError("a SUCCESS CertRep without content", FailInfo.badRequest)
        bundle, cipher = open_envelope(parts.content, None, requester_key)
        certificate = _issued_certificate(bundle)
    return CertRepResult(status, fail_info, certificate, got_transaction, got_nonce, cipher)
