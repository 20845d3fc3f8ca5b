"""Verify the `Mdm-Signature` header: a detached CMS SignedData over the exact request body;
and attached SignedData (a device's profile-service attributes) with `verify_attached`.

asn1crypto reads the structure (lazily: only the fields used here are decoded), cryptography
checks the signature. Before asn1crypto sees a blob, its size is capped and `ber.check` bounds
its framing (one element, nesting depth) in one flat pass; BER's indefinite lengths are made
definite first, so the signed parts are, byte for byte, the DER that was signed.

The `Mdm-Signature` check runs on every device request, so the parsed signature is cached by
its bytes (an Idle poll repeats byte for byte) and the signer certificate by its encoding (a
device keeps its identity). Only parsing is cached: the body hash and the public-key check run
on every call.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mdmserver.crypto import ber
from mdmserver.crypto.cms_algorithms import (
    Digest,
    PublicKey,
    Verifier,
    digest_algorithm,
    make_verifier,
)
from mdmserver.crypto.errors import SignatureError

MAX_SIGNATURE_BYTES = 64 * 1024
MAX_DEPTH = 32
_MAX_BASE64_CHARS = (MAX_SIGNATURE_BYTES + 2) // 3 * 4

_T = TypeVar("_T")


def _oid(dotted: str) -> bytes:
    """An OID's content octets: comparing those skips decoding each parsed OID to text."""
    return bytes(core.ObjectIdentifier(dotted).contents)


_SIGNED_DATA = _oid("1.2.840.113549.1.7.2")
_ID_DATA = _oid("1.2.840.113549.1.7.1")
_ATTR_CONTENT_TYPE = _oid("1.2.840.113549.1.9.3")
_ATTR_MESSAGE_DIGEST = _oid("1.2.840.113549.1.9.4")
# What asn1crypto raises on input that does not fit the schema (lazily, on first access).
_MALFORMED = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)


@dataclass(frozen=True, slots=True)
class _Parsed:
    """What a signature says, independent of the body it is checked against."""

    certificate: x509.Certificate
    digest: Digest
    signed_attributes: bytes | None  # DER, SET-tagged: the bytes the signature covers
    message_digest: bytes | None
    signature: bytes
    verify: Verifier
    content: bytes | None  # encapsulated content, when the signature is not detached
    embedded: tuple[bytes, ...]  # every embedded certificate, as encoded (signer included)


@dataclass(frozen=True, slots=True)
class AttachedContent:
    """What an attached SignedData proved: its content was signed by `signer`'s key."""

    content: bytes
    signer: x509.Certificate
    certificates: tuple[x509.Certificate, ...]  # the other embedded certificates (a chain)


def verify_mdm_signature(header_value: str, body: bytes) -> x509.Certificate:
    """Check an `Mdm-Signature` header against the request body; return the device certificate."""
    if isinstance(header_value, bytes | bytearray):
        try:
            header_value = bytes(header_value).decode("ascii")
        except UnicodeDecodeError:
            raise SignatureError("Mdm-Signature header is not valid base64") from None
    compact = "".join(header_value.split())
    if not compact:
        raise SignatureError("Mdm-Signature header is empty")
    if len(compact) > _MAX_BASE64_CHARS:
        raise SignatureError(
            f"Mdm-Signature header is {len(compact)} characters; at most "
            f"{_MAX_BASE64_CHARS} are accepted"
        )
    try:
        signature = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("Mdm-Signature header is not valid base64") from None
    return verify_detached(signature, body)


def verify_detached(
    signature: bytes, content: bytes, *, max_bytes: int | None = MAX_SIGNATURE_BYTES
) -> x509.Certificate:
    """Check a DER or BER CMS SignedData over `content`; return the signer's certificate.
    `max_bytes`: None when the caller has capped the size already (SCEP allows more).

    Says nothing about whether the certificate is trusted: that is `TrustStore.verify`'s job."""
    return _verify(_parse_bounded(signature, max_bytes), content)


def _parse_bounded(signature: bytes, max_bytes: int | None = MAX_SIGNATURE_BYTES) -> _Parsed:
    """The parsed SignedData, after the size checks every signature gets first."""
    signature = bytes(signature)
    if not signature:
        raise SignatureError("the signature is empty")
    if max_bytes is not None and len(signature) > max_bytes:
        raise SignatureError(
            f"the signature is {len(signature)} bytes; at most {max_bytes} are accepted"
        )
    return _parse_any(signature)


def _verify(parsed: _Parsed, content: bytes) -> x509.Certificate:
    """The signer's certificate, once the signature over `content` is proven."""
    if parsed.content is not None and parsed.content != content:
        raise SignatureError("the signature embeds content that differs from the body")
    if parsed.signed_attributes is None:
        signed = content
    else:
        actual = parsed.digest.new(content).digest()
        if not hmac.compare_digest(actual, parsed.message_digest or b""):
            raise SignatureError(
                f"the messageDigest attribute does not match the {parsed.digest.name} "
                "hash of the body"
            )
        signed = parsed.signed_attributes
    try:
        parsed.verify(parsed.signature, signed)
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        what = "the body" if parsed.signed_attributes is None else "the signed attributes"
        raise SignatureError(
            f"the signature over {what} does not verify with the signer certificate's key"
        ) from None
    return parsed.certificate


def verify_attached(signature: bytes) -> AttachedContent:
    """Check a DER or BER CMS SignedData that carries its content; return the content, the
    signer and the other embedded certificates, which a caller may use as a chain.

    Like `verify_detached`, it says nothing about whether the signer is trusted."""
    parsed = _parse_bounded(signature)
    if parsed.content is None:
        raise SignatureError("the SignedData carries no content (it is detached)")
    signer = _verify(parsed, parsed.content)
    others = []
    for encoded in parsed.embedded:
        cert = _cached(_load_signer, encoded)[0]
        if cert != signer:
            others.append(cert)
    return AttachedContent(parsed.content, signer, tuple(others))


def cache_info() -> dict[str, object]:
    """Hit rates of the parse and certificate caches, for metrics and the benchmark."""
    return {"signatures": _parse_cached.cache_info(), "certificates": _load_signer.cache_info()}


def clear_caches() -> None:
    """Forget cached signatures and certificates (benchmarks measure the cold path with it)."""
    _parse_cached.cache_clear()
    _signer.cache_clear()
    _issuer_and_serial.cache_clear()
    _load_signer.cache_clear()


def _parse_checked(signature: bytes) -> _Parsed:
    """Parse, turning every structural problem into a SignatureError with a reason."""
    try:
        if ber.check(signature, MAX_DEPTH):
            signature = ber.to_definite(signature)
        return _parse(signature)
    except ber.FramingError as exc:
        raise SignatureError(f"malformed CMS signature: {exc}") from None
    except SignatureError:
        raise
    except _MALFORMED as exc:
        raise SignatureError(f"malformed CMS signature ({type(exc).__name__}: {exc})") from None


# Caches keep only entries of plausible size, so a client sending large, distinct, valid
# signatures cannot make a worker hold 64 KiB per cache slot.
_CACHEABLE_BYTES = 8 * 1024
_parse_cached = lru_cache(maxsize=2048)(_parse_checked)


def _parse_any(signature: bytes) -> _Parsed:
    if len(signature) <= _CACHEABLE_BYTES:
        return _parse_cached(signature)
    return _parse_checked(signature)


def _parse(data: bytes) -> _Parsed:
    """Read what `_Parsed` holds from a signature with definite lengths only, so the bytes of
    the signed attributes and certificates are, as received, the DER that was signed."""
    info = cms.ContentInfo.load(data, strict=True)
    try:
        content_type = info["content_type"]
    except _MALFORMED:
        raise SignatureError(
            "not a CMS ContentInfo (expected a content type and [0] content)"
        ) from None
    if content_type.contents != _SIGNED_DATA:
        raise SignatureError(f"content type is {content_type.dotted}, not SignedData")
    signed = info["content"]
    content = _encapsulated_content(signed["encap_content_info"])
    signers = signed["signer_infos"]
    if len(signers) != 1:
        raise SignatureError(f"expected exactly one SignerInfo, found {len(signers)}")
    signer_info = signers[0]
    # Everything but the signed attributes and the signature value is the same in every
    # signature of one device: read once per distinct encoding, like the certificate.
    signer = _cached_signer(
        signed["certificates"].dump(),
        signer_info["sid"].dump(),
        signer_info["digest_algorithm"].dump(),
        signer_info["signature_algorithm"].dump(),
    )
    attrs = signer_info["signed_attrs"]
    if isinstance(attrs, core.Void):
        signed_attributes = message_digest = None
    else:
        signed_attributes, message_digest = _signed_attributes(attrs, signer.digest)
    return _Parsed(
        certificate=signer.certificate,
        digest=signer.digest,
        signed_attributes=signed_attributes,
        message_digest=message_digest,
        signature=signer_info["signature"].native,
        verify=signer.verify,
        content=content,
        embedded=signer.embedded,
    )


def _encapsulated_content(encap: Any) -> bytes | None:
    content_type = encap["content_type"]
    if content_type.contents != _ID_DATA:
        raise SignatureError(
            f"encapsulated content type is {content_type.dotted}, expected id-data"
        )
    econtent = encap["content"]
    if isinstance(econtent, core.Void):
        return None
    return bytes(econtent)


@dataclass(frozen=True, slots=True)
class _Signer:
    """Who signed and how: the part of a SignerInfo a device repeats in every signature."""

    certificate: x509.Certificate
    digest: Digest
    verify: Verifier
    embedded: tuple[bytes, ...]


def _cached_signer(certificates: bytes, sid: bytes, digest: bytes, algorithm: bytes) -> _Signer:
    if len(certificates) + len(sid) <= _CACHEABLE_BYTES:
        return _signer(certificates, sid, digest, algorithm)
    return _signer.__wrapped__(certificates, sid, digest, algorithm)


@lru_cache(maxsize=4096)
def _signer(certificates: bytes, sid: bytes, digest: bytes, algorithm: bytes) -> _Signer:
    """The signer certificate the SignerInfo's identifier names among the embedded ones, and a
    verifier for the algorithms it names; the arguments are the fields' encodings."""
    chosen = digest_algorithm(algos.DigestAlgorithm.load(digest))
    embedded = (
        ()
        if not certificates
        else tuple(
            choice.chosen.dump()
            for choice in cms.CertificateSet.load(certificates, implicit=0)
            if choice.name == "certificate"
        )
    )
    certificate, public_key = _find_signer(cms.SignerIdentifier.load(sid), embedded)
    verify = make_verifier(algos.SignedDigestAlgorithm.load(algorithm), chosen, public_key)
    return _Signer(certificate, chosen, verify, embedded)


def _signed_attributes(attrs: Any, digest: Digest) -> tuple[bytes, bytes]:
    """The DER SET the signature covers, and the messageDigest value, after checking both
    required attributes appear once with one value and say what RFC 5652 requires."""
    found: dict[bytes, Any] = {}
    for attribute in attrs:
        oid = attribute["type"].contents
        if oid in (_ATTR_CONTENT_TYPE, _ATTR_MESSAGE_DIGEST):
            name = "contentType" if oid == _ATTR_CONTENT_TYPE else "messageDigest"
            values = attribute["values"]
            if oid in found or len(values) != 1:
                raise SignatureError(f"the {name} attribute must appear once with one value")
            found[oid] = values[0]
    if _ATTR_CONTENT_TYPE not in found or _ATTR_MESSAGE_DIGEST not in found:
        raise SignatureError("signed attributes lack contentType or messageDigest")
    content_type = found[_ATTR_CONTENT_TYPE]
    if content_type.contents != _ID_DATA:
        raise SignatureError(
            f"the contentType attribute is {content_type.dotted}, expected id-data"
        )
    message_digest = found[_ATTR_MESSAGE_DIGEST].native
    expected = digest.algorithm.digest_size
    if len(message_digest) != expected:
        raise SignatureError(
            f"the messageDigest attribute has {len(message_digest)} bytes; "
            f"a {digest.name} digest has {expected}"
        )
    # The signature covers the attributes as a DER SET (tag 0x31), not the [0] stored here.
    return b"\x31" + attrs.dump()[1:], message_digest


def _find_signer(sid: Any, embedded: tuple[bytes, ...]) -> tuple[x509.Certificate, PublicKey]:
    if not embedded:
        raise SignatureError("the signature embeds no certificate")
    if sid.name == "issuer_and_serial_number":
        wanted = (sid.chosen["issuer"].dump(), sid.chosen["serial_number"].native)
        for encoded in embedded:
            if _cached(_issuer_and_serial, encoded) == wanted:
                return _cached(_load_signer, encoded)
    else:
        key_id = sid.chosen.native
        for encoded in embedded:
            loaded = _cached(_load_signer, encoded)
            if _subject_key_id(loaded[0]) == key_id:
                return loaded
    raise SignatureError("no embedded certificate matches the signer identifier")


def _cached(function: Callable[[bytes], _T], encoded: bytes) -> _T:
    """Call an lru_cache'd function, bypassing its cache for oversized certificates."""
    if len(encoded) <= _CACHEABLE_BYTES:
        return function(encoded)
    return function.__wrapped__(encoded)  # type: ignore[attr-defined]


@lru_cache(maxsize=4096)
def _issuer_and_serial(encoded: bytes) -> tuple[bytes, int]:
    """The certificate's issuer (DER) and serial, read lazily by asn1crypto (cheaper than
    loading every candidate with cryptography), once per distinct certificate."""
    try:
        tbs = asn1_x509.Certificate.load(encoded)["tbs_certificate"]
        return tbs["issuer"].dump(), tbs["serial_number"].native
    except _MALFORMED as exc:
        raise SignatureError(f"an embedded certificate is malformed: {exc}") from None


def _subject_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except (x509.ExtensionNotFound, x509.DuplicateExtension, ValueError):
        return None


@lru_cache(maxsize=4096)
def _load_signer(encoded: bytes) -> tuple[x509.Certificate, PublicKey]:
    """Load a certificate once per distinct encoding: a device signs with the same one always."""
    try:
        cert = x509.load_der_x509_certificate(encoded)
        key = cert.public_key()
    except (*_MALFORMED, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
        raise SignatureError(f"the signer certificate cannot be loaded: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise SignatureError(
            f"the signer certificate has a {type(key).__name__}; only RSA and EC are supported"
        )
    return cert, key
