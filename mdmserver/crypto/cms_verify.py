"""Verify the `Mdm-Signature` header: a detached CMS SignedData over the exact request body;
and attached SignedData (a device's profile-service attributes) with `verify_attached`.

asn1crypto reads the structure and cryptography checks the signature. A signature is capped in
size, then walked with asn1crypto's strict TLV parser: every field RFC 5652 places in a
ContentInfo, SignedData and SignerInfo is checked for its class and tag, and only the signed
attributes and the signature value are read per request. asn1crypto's schema classes read what
a device repeats in every signature (its certificates, signer identifier, algorithms), once
per distinct encoding (`_signer`), after `ber.check` has bounded their framing. BER with
indefinite lengths, or a blob the walk refuses, goes through `ber.check` too (one flat pass
that refuses trailing data and nesting past a cap, so the reason given is the framing one) and
is made definite, so the signed parts are, byte for byte, the DER that was signed.

Measured by scripts/bench_cms.py: the walk parses a device signature in about 70 µs, where
asn1crypto's schema classes took about 330 µs and the hand-written DER reader the server had
before about 120 µs (this path runs on every device request that carries a new signature).

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

from asn1crypto import algos, cms, core, parser
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
    """Parse, turning every structural problem into a SignatureError with a reason.

    DER (what devices send) is walked as it is. BER with indefinite lengths, or anything the
    walk refuses, goes through `ber.check` first: a framing fault (trailing data, nesting
    past the cap) is the clearer reason, and BER is made definite before it is walked again."""
    try:
        try:
            return _parse(signature)
        except _IndefiniteLength:
            pass
        except (SignatureError, *_MALFORMED):
            ber.check(signature, MAX_DEPTH)
            raise
        ber.check(signature, MAX_DEPTH)
        return _parse(ber.to_definite(signature))
    except ber.FramingError as exc:
        raise SignatureError(f"malformed CMS signature: {exc}") from None
    except SignatureError:
        raise
    except _MALFORMED as exc:
        raise SignatureError(f"malformed CMS signature ({type(exc).__name__}: {exc})") from None


class _IndefiniteLength(Exception):
    """The walk met a BER indefinite length: the signature is read again, made definite."""


def _definite(blob: bytes) -> bytes:
    """A part the schema classes read, its framing bounded first and BER made definite."""
    if blob and ber.check(blob, MAX_DEPTH):
        return ber.to_definite(blob)
    return blob


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
    the signed attributes and certificates are, as received, the DER that was signed.

    The per-request part (framing, signed attributes, signature value) is walked with
    asn1crypto's strict TLV parser, each element's class and tag checked against RFC 5652;
    asn1crypto's schema classes, about three times as costly, read only what a device repeats
    in every signature (certificates, signer identifier, algorithms), once, in `_signer`."""
    info = _children(_one(data, "ContentInfo", _SEQUENCE), "ContentInfo")
    if len(info) != 2 or info[0][:3] != _OID or info[1][:3] != (_CONTEXT, _CONSTRUCTED, 0):
        raise SignatureError("not a CMS ContentInfo (expected a content type and [0] content)")
    if info[0][4] != _SIGNED_DATA:
        raise SignatureError(f"content type is {_dotted(info[0])}, not SignedData")
    signed = _children(_one(info[1][4], "SignedData", _SEQUENCE), "SignedData")
    fields = iter(signed)
    _expect(next(fields, None), _INTEGER, "the SignedData version")
    _expect(next(fields, None), _SET, "the SignedData digestAlgorithms")
    content = _encapsulated_content(_expect(next(fields, None), _SEQUENCE, "encapContentInfo"))
    element = next(fields, None)
    certificates = b""
    if element is not None and element[:3] == (_CONTEXT, _CONSTRUCTED, 0):
        certificates = element[3] + element[4]
        element = next(fields, None)
    if element is not None and element[:3] == (_CONTEXT, _CONSTRUCTED, 1):
        element = next(fields, None)  # CRLs: not used
    signers = _children(_expect(element, _SET, "the SignedData signerInfos")[4], "signerInfos")
    if next(fields, None) is not None:
        raise SignatureError("the SignedData has fields after its signerInfos")
    if len(signers) != 1:
        raise SignatureError(f"expected exactly one SignerInfo, found {len(signers)}")
    info_fields = iter(_children(_expect(signers[0], _SEQUENCE, "the SignerInfo")[4], "SignerInfo"))
    _expect(next(info_fields, None), _INTEGER, "the SignerInfo version")
    sid = next(info_fields, None)
    if sid is None or sid[:3] not in (_SEQUENCE, (_CONTEXT, _PRIMITIVE, 0)):
        raise SignatureError("the SignerInfo's sid is neither issuerAndSerialNumber nor [0]")
    digest = _expect(next(info_fields, None), _SEQUENCE, "the SignerInfo digestAlgorithm")
    element = next(info_fields, None)
    attrs = None
    if element is not None and element[:3] == (_CONTEXT, _CONSTRUCTED, 0):
        attrs, element = element, next(info_fields, None)
    algorithm = _expect(element, _SEQUENCE, "the SignerInfo signatureAlgorithm")
    signature = _octets(next(info_fields, None), "the SignerInfo signature")
    element = next(info_fields, None)
    if element is not None and element[:3] != (_CONTEXT, _CONSTRUCTED, 1):
        raise SignatureError("the SignerInfo has an unexpected field after its signature")
    if next(info_fields, None) is not None:
        raise SignatureError("the SignerInfo has fields after its unsignedAttrs")
    # Everything but the signed attributes and the signature value is the same in every
    # signature of one device: read once per distinct encoding, like the certificate.
    signer = _cached_signer(
        certificates, sid[3] + sid[4], digest[3] + digest[4], algorithm[3] + algorithm[4]
    )
    if attrs is None:
        signed_attributes = message_digest = None
    else:
        signed_attributes, message_digest = _signed_attributes(attrs, signer.digest)
    return _Parsed(
        certificate=signer.certificate,
        digest=signer.digest,
        signed_attributes=signed_attributes,
        message_digest=message_digest,
        signature=signature,
        verify=signer.verify,
        content=content,
        embedded=signer.embedded,
    )


# One TLV as asn1crypto's parser reads it: (class, method, tag, header, content).
_Element = tuple[int, int, int, bytes, bytes]
_UNIVERSAL, _CONTEXT = 0, 2
_PRIMITIVE, _CONSTRUCTED = 0, 1
_INTEGER = (_UNIVERSAL, _PRIMITIVE, 2)
_OCTET_STRING = (_UNIVERSAL, _PRIMITIVE, 4)
_OID = (_UNIVERSAL, _PRIMITIVE, 6)
_SEQUENCE = (_UNIVERSAL, _CONSTRUCTED, 16)
_SET = (_UNIVERSAL, _CONSTRUCTED, 17)


def _one(data: bytes, what: str, kind: tuple[int, int, int]) -> bytes:
    """The content of the one element `data` must be, of this class, method and tag."""
    cls, method, tag, _header, content, trailer = parser.parse(data, strict=True)
    if trailer:
        raise _IndefiniteLength
    if (cls, method, tag) != kind:
        raise SignatureError(f"{what} is not {_KIND_NAMES.get(kind, 'the element expected')}")
    return content


def _children(content: bytes, what: str) -> list[_Element]:
    """The elements a constructed element's content holds, in order. The walk goes a fixed
    few levels deep; asn1crypto's parser bounds its own recursion on indefinite lengths."""
    out: list[_Element] = []
    pos, end = 0, len(content)
    while pos < end:
        cls, method, tag, header, body, trailer = parser.parse(content[pos:])
        if trailer:
            raise _IndefiniteLength
        out.append((cls, method, tag, header, body))
        pos += len(header) + len(body)
    return out


def _expect(element: _Element | None, kind: tuple[int, int, int], what: str) -> _Element:
    if element is None:
        raise SignatureError(f"{what} is missing")
    if element[:3] != kind:
        raise SignatureError(f"{what} is not {_KIND_NAMES.get(kind, 'the element expected')}")
    return element


def _octets(element: _Element | None, what: str) -> bytes:
    """An OCTET STRING's value; BER's constructed (segmented) form is read by asn1crypto."""
    if element is not None and element[:3] == (_UNIVERSAL, _CONSTRUCTED, 4):
        return bytes(core.OctetString.load(element[3] + element[4]))
    return _expect(element, _OCTET_STRING, what)[4]


def _dotted(element: _Element) -> str:
    return str(core.ObjectIdentifier.load(element[3] + element[4]).dotted)


_KIND_NAMES = {
    _INTEGER: "an INTEGER",
    _OCTET_STRING: "an OCTET STRING",
    _OID: "an OBJECT IDENTIFIER",
    _SEQUENCE: "a SEQUENCE",
    _SET: "a SET",
}


def _encapsulated_content(encap: _Element) -> bytes | None:
    fields = _children(encap[4], "encapContentInfo")
    if not fields or fields[0][:3] != _OID:
        raise SignatureError("encapContentInfo has no content type")
    if fields[0][4] != _ID_DATA:
        raise SignatureError(f"encapsulated content type is {_dotted(fields[0])}, expected id-data")
    if len(fields) == 1:
        return None
    if len(fields) != 2 or fields[1][:3] != (_CONTEXT, _CONSTRUCTED, 0):
        raise SignatureError("encapContentInfo's content is not a [0] element")
    inner = _children(fields[1][4], "eContent")
    if len(inner) != 1:
        raise SignatureError("encapContentInfo's [0] must hold one OCTET STRING")
    return _octets(inner[0], "the encapsulated content")


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
    certificates, sid, digest, algorithm = map(_definite, (certificates, sid, digest, algorithm))
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


def _signed_attributes(attrs: _Element, digest: Digest) -> tuple[bytes, bytes]:
    """The DER SET the signature covers, and the messageDigest value, after checking both
    required attributes appear once with one value and say what RFC 5652 requires."""
    found: dict[bytes, _Element] = {}
    for attribute in _children(attrs[4], "the signed attributes"):
        parts = _children(_expect(attribute, _SEQUENCE, "a signed attribute")[4], "an attribute")
        if len(parts) != 2 or parts[0][:3] != _OID or parts[1][:3] != _SET:
            raise SignatureError("a signed attribute is not a type and a SET of values")
        oid = parts[0][4]
        if oid in (_ATTR_CONTENT_TYPE, _ATTR_MESSAGE_DIGEST):
            name = "contentType" if oid == _ATTR_CONTENT_TYPE else "messageDigest"
            values = _children(parts[1][4], f"the {name} attribute")
            if oid in found or len(values) != 1:
                raise SignatureError(f"the {name} attribute must appear once with one value")
            found[oid] = values[0]
    if _ATTR_CONTENT_TYPE not in found or _ATTR_MESSAGE_DIGEST not in found:
        raise SignatureError("signed attributes lack contentType or messageDigest")
    content_type = _expect(found[_ATTR_CONTENT_TYPE], _OID, "the contentType attribute")
    if content_type[4] != _ID_DATA:
        raise SignatureError(
            f"the contentType attribute is {_dotted(content_type)}, expected id-data"
        )
    message_digest = _octets(found[_ATTR_MESSAGE_DIGEST], "the messageDigest attribute")
    expected = digest.algorithm.digest_size
    if len(message_digest) != expected:
        raise SignatureError(
            f"the messageDigest attribute has {len(message_digest)} bytes; "
            f"a {digest.name} digest has {expected}"
        )
    # The signature covers the attributes as a DER SET (tag 0x31), not the [0] stored here.
    return b"\x31" + attrs[3][1:] + attrs[4], message_digest


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
