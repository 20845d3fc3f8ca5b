"""A minimal, iterative BER reader and DER writer for the few CMS structures this server handles.

Why not a general ASN.1 library: the Mdm-Signature check runs on every device request, so it
reads only the fields it needs, straight from the bytes, without building objects; and nothing
here recurses, so a hostile, deeply nested blob cannot exhaust the Python stack. Every problem
is raised as `DerError`, which callers turn into their own specific exception.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

# Universal tags (identifier octets) used by CMS and X.509.
BOOLEAN = 0x01
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
UTF8_STRING = 0x0C
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18
SEQUENCE = 0x30
SET = 0x31
CONSTRUCTED = 0x20

_MAX_LENGTH_OCTETS = 4  # 4 GiB is far beyond any cap callers apply


class DerError(ValueError):
    """The bytes are not well-formed BER for the structure being read."""


class Tlv(NamedTuple):
    """One element: identifier octet, and offsets of its start, content, content end and next."""

    tag: int
    start: int
    body: int
    end: int
    next: int


# Building the tuple directly skips NamedTuple's Python-level __new__ on the hot path.
_TlvFactory = Callable[[type[Tlv], tuple[int, int, int, int, int]], Tlv]
_new_tlv: _TlvFactory = tuple.__new__


def _header(data: bytes, pos: int, limit: int) -> tuple[int, int, int]:
    """(tag, content offset, content length or -1 for indefinite) of the element at `pos`."""
    if pos + 2 > limit:
        raise DerError(f"truncated element header at offset {pos}")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DerError(f"high tag numbers are not used in CMS (offset {pos})")
    first = data[pos + 1]
    if first < 0x80:
        return tag, pos + 2, first
    if first == 0x80:
        if not tag & CONSTRUCTED:
            raise DerError(f"primitive element with indefinite length at offset {pos}")
        return tag, pos + 2, -1
    count = first & 0x7F
    if count > _MAX_LENGTH_OCTETS:
        raise DerError(f"length of {count} octets at offset {pos} is absurd")
    body = pos + 2 + count
    if body > limit:
        raise DerError(f"truncated length at offset {pos}")
    return tag, body, int.from_bytes(data[pos + 2 : body], "big")


def _find_end_of_contents(data: bytes, pos: int, limit: int, max_depth: int) -> int:
    """Offset of the end-of-contents octets closing the indefinite element whose content is at
    `pos`; walks iteratively, skipping definite-length children whole."""
    open_elements = 1
    while True:
        if pos + 2 > limit:
            raise DerError("indefinite-length element has no end-of-contents marker")
        if data[pos] == 0:
            if data[pos + 1] != 0:
                raise DerError(f"malformed end-of-contents marker at offset {pos}")
            open_elements -= 1
            if open_elements == 0:
                return pos
            pos += 2
            continue
        _, body, length = _header(data, pos, limit)
        if length < 0:
            open_elements += 1
            if open_elements > max_depth:
                raise DerError(f"nesting deeper than {max_depth} levels")
            pos = body
        else:
            pos = body + length
            if pos > limit:
                raise DerError(f"element at offset {body} runs past its container")


def read(data: bytes, pos: int, limit: int, max_depth: int = 64) -> Tlv:
    """The element starting at `pos`, which must fit before `limit`."""
    if pos + 4 <= limit and data[pos] & 0x1F != 0x1F:
        # Definite lengths under 64 KiB, the common case, decoded inline: this runs ~50 times
        # per signature, and a function call per element would double its cost.
        first = data[pos + 1]
        if first < 0x80:
            body, end = pos + 2, pos + 2 + first
        elif first == 0x81:
            body, end = pos + 3, pos + 3 + data[pos + 2]
        elif first == 0x82:
            body, end = pos + 4, pos + 4 + (data[pos + 2] << 8 | data[pos + 3])
        else:
            body = end = -1
        if body >= 0:
            if end > limit:
                raise DerError(f"element at offset {pos} runs past its container")
            return _new_tlv(Tlv, (data[pos], pos, body, end, end))
    tag, body, length = _header(data, pos, limit)
    if length >= 0:
        end = body + length
        if end > limit:
            raise DerError(f"element at offset {pos} runs past its container")
        return _new_tlv(Tlv, (tag, pos, body, end, end))
    end = _find_end_of_contents(data, body, limit, max_depth)
    return _new_tlv(Tlv, (tag, pos, body, end, end + 2))


def read_expected(data: bytes, pos: int, limit: int, tag: int, what: str) -> Tlv:
    """Read an element and insist on its tag, naming the field in the error."""
    if pos >= limit:
        raise DerError(f"{what} is missing")
    tlv = read(data, pos, limit)
    if tlv.tag != tag:
        raise DerError(f"{what}: expected tag 0x{tag:02x}, found 0x{tlv.tag:02x}")
    return tlv


def children(data: bytes, parent: Tlv) -> list[Tlv]:
    """The direct children of a constructed element."""
    if not parent.tag & CONSTRUCTED:
        raise DerError(f"element at offset {parent.start} is not constructed")
    items: list[Tlv] = []
    pos = parent.body
    while pos < parent.end:
        tlv = read(data, pos, parent.end)
        items.append(tlv)
        pos = tlv.next
    return items


def check_depth(data: bytes, max_depth: int) -> None:
    """Refuse a blob nested deeper than `max_depth`, or not exactly one well-formed element.

    One flat pass over the headers, with an explicit stack; a definite-length element too short
    to hold the remaining allowed levels cannot exceed the cap, so its content is skipped."""
    limit = len(data)
    if not limit:
        raise DerError("no data")
    stack: list[int] = []  # enclosing limits; -1 marks an indefinite-length element
    pos = 0
    current = limit
    while True:
        if not stack and pos:
            if pos != limit:
                raise DerError(f"{limit - pos} bytes of trailing data")
            return
        if current >= 0:
            if pos == current:
                current = stack.pop()
                continue
            bound = current
        else:
            if data[pos : pos + 2] == b"\x00\x00":
                pos += 2
                current = stack.pop()
                continue
            bound = limit
        if pos + 2 <= bound and data[pos + 1] < 0x80:
            tag, body, length = data[pos], pos + 2, data[pos + 1]
            if tag & 0x1F == 0x1F:
                raise DerError(f"high tag numbers are not used in CMS (offset {pos})")
        else:
            tag, body, length = _header(data, pos, bound)
        if tag == 0:
            raise DerError(f"unexpected end-of-contents marker at offset {pos}")
        if length >= 0:
            end = body + length
            if end > bound:
                raise DerError(f"element at offset {pos} runs past its container")
            if not tag & CONSTRUCTED or length < 2 * (max_depth - len(stack)):
                pos = end
                continue
        if len(stack) >= max_depth:
            raise DerError(f"nesting deeper than {max_depth} levels")
        stack.append(current)
        current = body + length if length >= 0 else -1
        pos = body


def octets(data: bytes, tlv: Tlv, what: str) -> bytes:
    """The value of an OCTET STRING, joining the segments of BER's constructed form."""
    if tlv.tag & ~CONSTRUCTED != OCTET_STRING:
        raise DerError(f"{what} is not an OCTET STRING")
    if not tlv.tag & CONSTRUCTED:
        return data[tlv.body : tlv.end]
    parts: list[bytes] = []
    pending = [tlv]
    while pending:
        node = pending.pop()
        if not node.tag & CONSTRUCTED:
            parts.append(data[node.body : node.end])
            continue
        segments = children(data, node)
        if any(seg.tag & 0xDF != OCTET_STRING for seg in segments):
            raise DerError(f"{what}: a constructed segment is not an OCTET STRING")
        pending.extend(reversed(segments))
    return b"".join(parts)


def has_indefinite_length(data: bytes, tlv: Tlv) -> bool:
    """Whether the element or anything inside it uses an indefinite length.

    Headers appear in document order, so one linear pass that steps into constructed elements
    and over primitive ones visits them all, with no stack."""
    if tlv.next != tlv.end:
        return True
    pos, limit = tlv.body, tlv.end
    if not tlv.tag & CONSTRUCTED:
        return False
    while pos < limit:
        tag, body, length = _header(data, pos, limit)
        if length < 0:
            return True
        pos = body if tag & CONSTRUCTED else body + length
    return False


def to_der_lengths(data: bytes, tlv: Tlv) -> bytes:
    """The element re-encoded with definite lengths everywhere (content otherwise unchanged).

    BER senders sign the DER form of signed attributes and certificates; when they only made the
    lengths indefinite on the wire, this recovers the exact bytes that were signed."""
    if not has_indefinite_length(data, tlv):
        return data[tlv.start : tlv.next]
    # Post-order rebuild with an explicit stack: (tlv, encoded children so far, remaining).
    stack: list[tuple[Tlv, list[bytes], list[Tlv]]] = [(tlv, [], children(data, tlv)[::-1])]
    while True:
        node, done, todo = stack[-1]
        if todo:
            child = todo.pop()
            if child.tag & CONSTRUCTED:
                stack.append((child, [], children(data, child)[::-1]))
            else:
                done.append(data[child.start : child.next])
            continue
        stack.pop()
        encoded = encode(node.tag, b"".join(done))
        if not stack:
            return encoded
        stack[-1][1].append(encoded)


def encode_length(length: int) -> bytes:
    """DER length octets."""
    if length < 0x80:
        return bytes((length,))
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def encode(tag: int, content: bytes) -> bytes:
    """One DER element."""
    return bytes((tag,)) + encode_length(len(content)) + content


def encode_set_of(items: list[bytes]) -> bytes:
    """A DER SET OF: members sorted by their encodings, as DER requires."""
    return encode(SET, b"".join(sorted(items)))


def encode_integer(value: int) -> bytes:
    """A DER INTEGER (two's complement, minimal length)."""
    length = value.bit_length() // 8 + 1
    return encode(INTEGER, value.to_bytes(length, "big", signed=True))


def encode_oid(dotted: str) -> bytes:
    """A DER OBJECT IDENTIFIER from its dotted form."""
    arcs = [int(part) for part in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40):
        raise ValueError(f"not a valid object identifier: {dotted!r}")
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return encode(OID, bytes(out))


def decode_oid(content: bytes) -> str:
    """The dotted form of an OBJECT IDENTIFIER's content octets, for error messages."""
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs or value:
        return "(malformed OID " + content.hex() + ")"
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in [first, arcs[0] - 40 * first, *arcs[1:]])
