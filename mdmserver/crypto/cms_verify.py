"""Verify the `Mdm-Signature` header: a detached CMS SignedData over the exact request body;
and attached SignedData (a device's profile-service attributes) with `verify_attached`.

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
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mdmserver.crypto import der
from mdmserver.crypto.cms_algorithms import (
    Digest,
    PublicKey,
    Verifier,
    digest_algorithm,
    make_verifier,
    oid_content,
)
from mdmserver.crypto.errors import SignatureError

MAX_SIGNATURE_BYTES = 64 * 1024
MAX_DEPTH = 32
_MAX_BASE64_CHARS = (MAX_SIGNATURE_BYTES + 2) // 3 * 4


_oid = oid_content
_T = TypeVar("_T")
_SIGNED_DATA = _oid("1.2.840.113549.1.7.2")
_ID_DATA = _oid("1.2.840.113549.1.7.1")
_ATTR_CONTENT_TYPE = _oid("1.2.840.113549.1.9.3")
_ATTR_MESSAGE_DIGEST = _oid("1.2.840.113549.1.9.4")


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


def verify_detached(signature: bytes, content: bytes) -> x509.Certificate:
    """Check a DER or BER CMS SignedData over `content`; return the signer's certificate.

    Says nothing about whether the certificate is trusted: that is `TrustStore.verify`'s job."""
    return _verify(_parse_bounded(signature), content)


def _parse_bounded(signature: bytes) -> _Parsed:
    """The parsed SignedData, after the size checks every signature gets first."""
    signature = bytes(signature)
    if not signature:
        raise SignatureError("the signature is empty")
    if len(signature) > MAX_SIGNATURE_BYTES:
        raise SignatureError(
            f"the signature is {len(signature)} bytes; at most {MAX_SIGNATURE_BYTES} are accepted"
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
    _issuer_and_serial.cache_clear()
    _load_signer.cache_clear()


def _parse_checked(signature: bytes) -> _Parsed:
    """Parse, turning every structural problem into a SignatureError with a reason."""
    try:
        der.check_depth(signature, MAX_DEPTH)
        return _parse(signature)
    except SignatureError:
        raise
    except der.DerError as exc:
        raise SignatureError(f"malformed CMS signature: {exc}") from None
    except (IndexError, KeyError, TypeError, OverflowError, ValueError) as exc:
        raise SignatureError(f"malformed CMS signature ({type(exc).__name__})") from None


# Caches keep only entries of plausible size, so a client sending large, distinct, valid
# signatures cannot make a worker hold 64 KiB per cache slot.
_CACHEABLE_BYTES = 8 * 1024
_parse_cached = lru_cache(maxsize=2048)(_parse_checked)


def _parse_any(signature: bytes) -> _Parsed:
    if len(signature) <= _CACHEABLE_BYTES:
        return _parse_cached(signature)
    return _parse_checked(signature)


def _parse(data: bytes) -> _Parsed:
    top = der.read_expected(data, 0, len(data), der.SEQUENCE, "ContentInfo")
    info = der.children(data, top)
    if len(info) != 2 or info[0].tag != der.OID or info[1].tag != 0xA0:
        raise SignatureError("not a CMS ContentInfo (expected a content type and [0] content)")
    if data[info[0].body : info[0].end] != _SIGNED_DATA:
        found = der.decode_oid(data[info[0].body : info[0].end])
        raise SignatureError(f"content type is {found}, not SignedData")
    wrapper = der.children(data, info[1])
    if len(wrapper) != 1 or wrapper[0].tag != der.SEQUENCE:
        raise SignatureError("SignedData is not a single SEQUENCE")
    fields = der.children(data, wrapper[0])
    if len(fields) < 4:
        raise SignatureError("SignedData is incomplete")
    _, _, encap, *optional, signer_infos = fields
    content = _encapsulated_content(data, encap)
    certificates = [f for f in optional if f.tag == 0xA0]
    if signer_infos.tag != der.SET or any(f.tag not in (0xA0, 0xA1) for f in optional):
        raise SignatureError("SignedData fields are out of order or of the wrong type")
    signers = der.children(data, signer_infos)
    if len(signers) != 1:
        raise SignatureError(f"expected exactly one SignerInfo, found {len(signers)}")
    return _parse_signer_info(data, signers[0], certificates, content)


def _embedded(data: bytes, certificates: list[der.Tlv]) -> list[der.Tlv]:
    """The certificates in the SignedData's [0] set (other certificate formats are skipped)."""
    embedded = der.children(data, certificates[0]) if certificates else []
    return [c for c in embedded if c.tag == der.SEQUENCE]


def _encapsulated_content(data: bytes, encap: der.Tlv) -> bytes | None:
    if encap.tag != der.SEQUENCE:
        raise SignatureError("encapContentInfo is not a SEQUENCE")
    parts = der.children(data, encap)
    if not parts or parts[0].tag != der.OID:
        raise SignatureError("encapContentInfo has no content type")
    if data[parts[0].body : parts[0].end] != _ID_DATA:
        found = der.decode_oid(data[parts[0].body : parts[0].end])
        raise SignatureError(f"encapsulated content type is {found}, expected id-data")
    if len(parts) == 1:
        return None
    if len(parts) != 2 or parts[1].tag != 0xA0:
        raise SignatureError("encapContentInfo has unexpected fields")
    inner = der.children(data, parts[1])
    if len(inner) != 1:
        raise SignatureError("eContent must hold exactly one OCTET STRING")
    return der.octets(data, inner[0], "eContent")


def _parse_signer_info(
    data: bytes, info: der.Tlv, certificates: list[der.Tlv], content: bytes | None
) -> _Parsed:
    if info.tag != der.SEQUENCE:
        raise SignatureError("SignerInfo is not a SEQUENCE")
    fields = der.children(data, info)
    if len(fields) < 5:
        raise SignatureError("SignerInfo is incomplete")
    _, sid, digest_alg, *rest = fields
    attrs = rest.pop(0) if rest and rest[0].tag == 0xA0 else None
    if len(rest) < 2:
        raise SignatureError("SignerInfo has no signature algorithm or signature")
    signature_alg, signature_value = rest[0], rest[1]
    digest = digest_algorithm(data, digest_alg)
    if attrs is None:
        signed_attributes = message_digest = None
    else:
        signed_attributes, message_digest = _signed_attributes(data, attrs, digest)
    certificate, public_key = _find_signer(data, sid, certificates)
    return _Parsed(
        certificate=certificate,
        digest=digest,
        signed_attributes=signed_attributes,
        message_digest=message_digest,
        signature=der.octets(data, signature_value, "signature"),
        verify=make_verifier(data, signature_alg, digest, public_key),
        content=content,
        embedded=tuple(data[c.start : c.next] for c in _embedded(data, certificates)),
    )


def _signed_attributes(data: bytes, attrs: der.Tlv, digest: Digest) -> tuple[bytes, bytes]:
    """The DER SET the signature covers, and the messageDigest value, after checking both
    required attributes appear once with one value and say what RFC 5652 requires."""
    found: dict[bytes, der.Tlv] = {}
    for attribute in der.children(data, attrs):
        if attribute.tag != der.SEQUENCE:
            raise SignatureError("a signed attribute is not a SEQUENCE")
        parts = der.children(data, attribute)
        if len(parts) != 2 or parts[0].tag != der.OID or parts[1].tag != der.SET:
            raise SignatureError("a signed attribute is not an OID with a SET of values")
        oid = data[parts[0].body : parts[0].end]
        if oid in (_ATTR_CONTENT_TYPE, _ATTR_MESSAGE_DIGEST):
            name = "contentType" if oid == _ATTR_CONTENT_TYPE else "messageDigest"
            values = der.children(data, parts[1])
            if oid in found or len(values) != 1:
                raise SignatureError(f"the {name} attribute must appear once with one value")
            found[oid] = values[0]
    if _ATTR_CONTENT_TYPE not in found or _ATTR_MESSAGE_DIGEST not in found:
        raise SignatureError("signed attributes lack contentType or messageDigest")
    content_type = found[_ATTR_CONTENT_TYPE]
    value = data[content_type.body : content_type.end]
    if content_type.tag != der.OID or value != _ID_DATA:
        shown = der.decode_oid(value) if content_type.tag == der.OID else "not an OID"
        raise SignatureError(f"the contentType attribute is {shown}, expected id-data")
    message_digest = der.octets(data, found[_ATTR_MESSAGE_DIGEST], "messageDigest")
    expected = digest.algorithm.digest_size
    if len(message_digest) != expected:
        raise SignatureError(
            f"the messageDigest attribute has {len(message_digest)} bytes; "
            f"a {digest.name} digest has {expected}"
        )
    # The signature covers the attributes as a DER SET (tag 0x31), not the [0] stored here.
    encoded = der.to_der_lengths(data, attrs)
    return b"\x31" + encoded[1:], message_digest


def _find_signer(
    data: bytes, sid: der.Tlv, certificates: list[der.Tlv]
) -> tuple[x509.Certificate, PublicKey]:
    candidates = _embedded(data, certificates)
    if not candidates:
        raise SignatureError("the signature embeds no certificate")
    if sid.tag == der.SEQUENCE:
        parts = der.children(data, sid)
        if len(parts) != 2 or parts[1].tag != der.INTEGER:
            raise SignatureError("issuerAndSerialNumber is malformed")
        issuer = der.to_der_lengths(data, parts[0])
        serial = int.from_bytes(data[parts[1].body : parts[1].end], "big", signed=True)
        for cert in candidates:
            encoded = data[cert.start : cert.next]
            if _cached(_issuer_and_serial, encoded) == (issuer, serial):
                return _cached(_load_signer, encoded)
    elif sid.tag in (0x80, 0xA0):
        key_id = der.octets(data, sid._replace(tag=sid.tag & 0x20 | der.OCTET_STRING), "SKI")
        for cert in candidates:
            loaded = _cached(_load_signer, data[cert.start : cert.next])
            if _subject_key_id(loaded[0]) == key_id:
                return loaded
    else:
        raise SignatureError("the signer identifier is neither issuerAndSerialNumber nor SKI")
    raise SignatureError("no embedded certificate matches the signer identifier")


def _cached(function: Callable[[bytes], _T], encoded: bytes) -> _T:
    """Call an lru_cache'd function, bypassing its cache for oversized certificates."""
    if len(encoded) <= _CACHEABLE_BYTES:
        return function(encoded)
    return function.__wrapped__(encoded)  # type: ignore[attr-defined]


@lru_cache(maxsize=4096)
def _issuer_and_serial(encoded: bytes) -> tuple[bytes, int]:
    """Read straight from the certificate bytes (cheaper than loading every candidate), once
    per distinct certificate."""
    try:
        cert = der.read(encoded, 0, len(encoded))
        tbs = der.read_expected(encoded, cert.body, cert.end, der.SEQUENCE, "tbsCertificate")
        fields = der.children(encoded, tbs)
    except der.DerError as exc:
        raise SignatureError(f"an embedded certificate is malformed: {exc}") from None
    if fields and fields[0].tag == 0xA0:
        fields = fields[1:]
    if len(fields) < 3 or fields[0].tag != der.INTEGER or fields[2].tag != der.SEQUENCE:
        raise SignatureError("an embedded certificate is malformed")
    serial = int.from_bytes(encoded[fields[0].body : fields[0].end], "big", signed=True)
    return der.to_der_lengths(encoded, fields[2]), serial


def _subject_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except (x509.ExtensionNotFound, x509.DuplicateExtension, ValueError):
        return None


@lru_cache(maxsize=4096)
def _load_signer(encoded: bytes) -> tuple[x509.Certificate, PublicKey]:
    """Load a certificate once per distinct encoding: a device signs with the same one always."""
    try:
        tlv = der.read(encoded, 0, len(encoded))
        cert = x509.load_der_x509_certificate(der.to_der_lengths(encoded, tlv))
        key = cert.public_key()
    except (der.DerError, ValueError, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
        raise SignatureError(f"the signer certificate cannot be loaded: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise SignatureError(
            f"the signer certificate has a {type(key).__name__}; only RSA and EC are supported"
        )
    return cert, key
