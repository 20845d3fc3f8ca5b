"""PKIOperation requests in, CertRep answers out (RFC 8894 section 3), with no web or storage.

Errors are split by what the web layer can still do: a plain `ScepError` means the message was
not readable far enough to know its transaction (answer HTTP 400); a `ScepRejected` carries the
transaction, so a signed FAILURE CertRep with its failInfo can be sent back.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Protocol

from asn1crypto import cms, core
from asn1crypto import csr as asn1_csr
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa

from mdmserver.scep.envelope import envelope as make_envelope
from mdmserver.scep.envelope import open_envelope
from mdmserver.scep.errors import FailInfo, ScepError, ScepRejected, Transaction
from mdmserver.scep.signed import (
    DIGESTS,
    OID_FAIL_INFO,
    OID_MESSAGE_TYPE,
    OID_PKI_STATUS,
    OID_RECIPIENT_NONCE,
    OID_SENDER_NONCE,
    OID_SIGNING_TIME,
    OID_TRANSACTION_ID,
    SignedParts,
    attribute,
    degenerate_certs_only,
    degenerate_crl,
    octets_attr,
    read_signed,
    sign,
    single_value,
    string_attr,
    verify_signed,
)

# A CSR for a 4096-bit key wrapped twice is under 8 KiB; anything near this is not a device.
MAX_MESSAGE_BYTES = 256 * 1024
_MAX_TRANSACTION_ID = 256
_MAX_NONCE = 64
_PRINTABLE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]+")

# What asn1crypto and cryptography raise on malformed input, all lazily.
_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError)


class MessageType(IntEnum):
    """RFC 8894 section 3.2.1.2 messageType values."""

    CertRep = 3
    RenewalReq = 17
    PKCSReq = 19
    CertPoll = 20  # GetCertInitial in older drafts
    GetCert = 21
    GetCRL = 22


class PkiStatus(IntEnum):
    SUCCESS = 0
    FAILURE = 2
    PENDING = 3


class HasTransaction(Protocol):
    """Anything a failure CertRep can answer: a Transaction, MessageHeader or PkiRequest."""

    @property
    def transaction_id(self) -> str: ...
    @property
    def sender_nonce(self) -> bytes: ...
    @property
    def digest_algorithm(self) -> str: ...


@dataclass(frozen=True)
class MessageHeader:
    """The verified outer SignedData of a PKIOperation: readable without the CA key."""

    message_type: MessageType
    transaction_id: str
    sender_nonce: bytes
    signer_cert: x509.Certificate
    digest_algorithm: str
    signing_time: datetime | None

    @property
    def transaction(self) -> Transaction:
        return Transaction(self.transaction_id, self.sender_nonce, self.digest_algorithm)


@dataclass(frozen=True)
class PkiRequest:
    """A verified, decrypted PKCSReq or RenewalReq; whether to issue is the caller's policy."""

    message_type: MessageType
    transaction_id: str
    sender_nonce: bytes
    csr: x509.CertificateSigningRequest
    challenge: str | None
    signer_cert: x509.Certificate
    digest_algorithm: str
    content_encryption: str

    @property
    def transaction(self) -> Transaction:
        return Transaction(self.transaction_id, self.sender_nonce, self.digest_algorithm)


@dataclass(frozen=True)
class CrlRequest:
    """A verified, decrypted GetCRL: the CRL of the CA that issued `serial` under `issuer`."""

    transaction_id: str
    sender_nonce: bytes
    issuer_der: bytes  # the DER Name, to compare with the CA's subject
    serial: int
    signer_cert: x509.Certificate
    digest_algorithm: str
    content_encryption: str

    @property
    def transaction(self) -> Transaction:
        return Transaction(self.transaction_id, self.sender_nonce, self.digest_algorithm)


@contextmanager
def _reading(transaction: Transaction | None = None) -> Iterator[None]:
    """Turn any parse failure into ScepError, or ScepRejected once the transaction is known."""
    try:
        yield
    except ScepRejected:
        raise
    except ScepError as exc:
        if transaction is None:
            raise
        raise ScepRejected(str(exc), exc.fail_info, transaction) from exc
    except _PARSE_ERRORS as exc:
        message = f"malformed SCEP message ({type(exc).__name__})"
        if transaction is None:
            raise ScepError(message, FailInfo.badRequest) from exc
        raise ScepRejected(message, FailInfo.badRequest, transaction) from exc


def _transaction(parts: SignedParts) -> Transaction:
    transaction_id = string_attr(parts.attributes, OID_TRANSACTION_ID)
    nonce = octets_attr(parts.attributes, OID_SENDER_NONCE)
    if not transaction_id or len(transaction_id) > _MAX_TRANSACTION_ID:
        raise ScepError("missing or oversized transactionID", FailInfo.badRequest)
    if not _PRINTABLE.fullmatch(transaction_id):
        # It is echoed as a PrintableString, so it must be one.
        raise ScepError("transactionID is not printable", FailInfo.badRequest)
    if not nonce or len(nonce) > _MAX_NONCE:
        raise ScepError("missing or oversized senderNonce", FailInfo.badRequest)
    digest = parts.digest_algorithm if parts.digest_algorithm in DIGESTS else "sha256"
    return Transaction(transaction_id, nonce, digest)


def _message_type(parts: SignedParts) -> MessageType:
    raw = string_attr(parts.attributes, OID_MESSAGE_TYPE)
    if raw is None:
        raise ScepError("missing messageType", FailInfo.badRequest)
    try:
        return MessageType(int(raw))
    except ValueError:
        raise ScepError(f"unknown messageType {raw!r}", FailInfo.badRequest) from None


def _signing_time(parts: SignedParts) -> datetime | None:
    value = single_value(parts.attributes, OID_SIGNING_TIME)
    if value is None:
        return None
    if not isinstance(value, (core.UTCTime, core.GeneralizedTime)):
        raise ScepError("signingTime is not a time", FailInfo.badRequest)
    return value.native


def _read(data: bytes) -> tuple[MessageHeader, bytes | None]:
    if not isinstance(data, bytes | bytearray) or not data:
        raise ScepError("empty PKIOperation", FailInfo.badRequest)
    if len(data) > MAX_MESSAGE_BYTES:
        raise ScepError(f"PKIOperation over {MAX_MESSAGE_BYTES} bytes", FailInfo.badRequest)
    with _reading():
        parts = read_signed(bytes(data))
        transaction = _transaction(parts)
    with _reading(transaction):
        signer_cert = verify_signed(parts)
        header = MessageHeader(
            message_type=_message_type(parts),
            transaction_id=transaction.transaction_id,
            sender_nonce=transaction.sender_nonce,
            signer_cert=signer_cert,
            digest_algorithm=transaction.digest_algorithm,
            signing_time=_signing_time(parts),
        )
    return header, parts.content


def peek(data: bytes) -> MessageHeader:
    """Verify the outer signature and read the SCEP attributes, without the CA key."""
    return _read(data)[0]


def _challenge(csr_der: bytes) -> str | None:
    info = asn1_csr.CertificationRequest.load(csr_der)["certification_request_info"]
    found = [a for a in info["attributes"] if a["type"].native == "challenge_password"]
    if not found:
        return None
    values = found[0]["values"]
    if len(found) != 1 or len(values) != 1:
        raise ScepError("the CSR must carry one challengePassword", FailInfo.badRequest)
    value = values[0].native
    if not isinstance(value, str):
        raise ScepError("the CSR challengePassword is not a string", FailInfo.badRequest)
    return value


def read_pki_message(
    data: bytes, ca_cert: x509.Certificate, ca_key: rsa.RSAPrivateKey
) -> PkiRequest | CrlRequest:
    """Verify and decrypt a PKIOperation: a PKCSReq or RenewalReq, or a GetCRL."""
    header, content = _read(data)
    if header.message_type == MessageType.GetCRL:
        return _get_crl(header, content, ca_cert, ca_key)
    return _pki_request(header, content, ca_cert, ca_key)


def parse_pki_message(
    data: bytes, ca_cert: x509.Certificate, ca_key: rsa.RSAPrivateKey
) -> PkiRequest:
    """Verify, decrypt and check a PKCSReq or RenewalReq addressed to this CA."""
    header, content = _read(data)
    return _pki_request(header, content, ca_cert, ca_key)


def _get_crl(
    header: MessageHeader,
    content: bytes | None,
    ca_cert: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
) -> CrlRequest:
    transaction = header.transaction
    if content is None:
        raise ScepRejected("the request has no content", FailInfo.badRequest, transaction)
    with _reading(transaction):
        plain, cipher = open_envelope(content, ca_cert, ca_key)
    try:
        wanted = cms.IssuerAndSerialNumber.load(plain)
        issuer_der, serial = wanted["issuer"].dump(), wanted["serial_number"].native
    except _PARSE_ERRORS:
        # Same words as a failed decryption: the CA key must not become a padding oracle.
        raise ScepRejected(
            "the enveloped content could not be decrypted", FailInfo.badMessageCheck, transaction
        ) from None
    return CrlRequest(
        transaction_id=header.transaction_id,
        sender_nonce=header.sender_nonce,
        issuer_der=issuer_der,
        serial=serial,
        signer_cert=header.signer_cert,
        digest_algorithm=header.digest_algorithm,
        content_encryption=cipher,
    )


def _pki_request(
    header: MessageHeader,
    content: bytes | None,
    ca_cert: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
) -> PkiRequest:
    transaction = header.transaction
    if header.message_type == MessageType.CertPoll:
        # Requests are decided at once, never left PENDING, so there is nothing to poll for.
        raise ScepRejected(
            "no pending request for this transaction", FailInfo.badCertId, transaction
        )
    if header.message_type not in (MessageType.PKCSReq, MessageType.RenewalReq):
        raise ScepRejected(
            f"{header.message_type.name} is not supported", FailInfo.badRequest, transaction
        )
    if content is None:
        raise ScepRejected("the request has no content", FailInfo.badRequest, transaction)
    with _reading(transaction):
        csr_der, cipher = open_envelope(content, ca_cert, ca_key)
    try:
        csr = x509.load_der_x509_csr(csr_der)
    except ValueError:
        # Same words as a failed decryption: the CA key must not become a padding oracle.
        raise ScepRejected(
            "the enveloped content could not be decrypted", FailInfo.badMessageCheck, transaction
        ) from None
    try:
        valid = csr.is_signature_valid
    except (UnsupportedAlgorithm, ValueError):
        raise ScepRejected(
            "the CSR signature algorithm is not supported", FailInfo.badAlg, transaction
        ) from None
    if not valid:
        raise ScepRejected(
            "the CSR self-signature does not verify", FailInfo.badMessageCheck, transaction
        )
    with _reading(transaction):
        challenge = _challenge(csr_der)
    return PkiRequest(
        message_type=header.message_type,
        transaction_id=header.transaction_id,
        sender_nonce=header.sender_nonce,
        csr=csr,
        challenge=challenge,
        signer_cert=header.signer_cert,
        digest_algorithm=header.digest_algorithm,
        content_encryption=cipher,
    )


def _reply_attributes(to: HasTransaction, status: PkiStatus) -> list:
    return [
        attribute(OID_MESSAGE_TYPE, core.PrintableString(str(int(MessageType.CertRep)))),
        attribute(OID_PKI_STATUS, core.PrintableString(str(int(status)))),
        attribute(OID_TRANSACTION_ID, core.PrintableString(to.transaction_id)),
        attribute(OID_RECIPIENT_NONCE, core.OctetString(to.sender_nonce)),
        attribute(OID_SENDER_NONCE, core.OctetString(os.urandom(16))),
    ]


def build_cert_rep_success(
    req: PkiRequest,
    issued: x509.Certificate,
    ca_cert: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    *,
    encryption: str | None = None,
) -> bytes:
    """A SUCCESS CertRep delivering `issued`, encrypted to the requester's signer certificate.

    The content encryption defaults to the one the requester used: it proved it can decrypt
    that, and the certificate it protects is public anyway.
    """
    bundle = degenerate_certs_only([issued])
    enveloped = make_envelope(bundle, req.signer_cert, encryption or req.content_encryption)
    return sign(
        enveloped,
        ca_cert,
        ca_key,
        _reply_attributes(req, PkiStatus.SUCCESS),
        digest=req.digest_algorithm,
    )


def build_cert_rep_crl(
    req: CrlRequest, crl_der: bytes, ca_cert: x509.Certificate, ca_key: rsa.RSAPrivateKey
) -> bytes:
    """A SUCCESS CertRep answering a GetCRL: the CRL in a degenerate SignedData, enveloped to
    the requester like an issued certificate."""
    enveloped = make_envelope(degenerate_crl(crl_der), req.signer_cert, req.content_encryption)
    return sign(
        enveloped,
        ca_cert,
        ca_key,
        _reply_attributes(req, PkiStatus.SUCCESS),
        digest=req.digest_algorithm,
    )


def build_cert_rep_failure(
    to: HasTransaction,
    fail_info: FailInfo,
    ca_cert: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
) -> bytes:
    """A FAILURE CertRep: no content, the failInfo says why (messageDigest is of empty content)."""
    attrs = _reply_attributes(to, PkiStatus.FAILURE)
    attrs.append(attribute(OID_FAIL_INFO, core.PrintableString(str(int(fail_info)))))
    digest = to.digest_algorithm if to.digest_algorithm in DIGESTS else "sha256"
    return sign(None, ca_cert, ca_key, attrs, digest=digest)
