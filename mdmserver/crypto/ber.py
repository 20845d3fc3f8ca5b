"""The framing of a BER blob, checked before asn1crypto reads it, and BER's indefinite lengths
made definite.

No value is read here: asn1crypto does all the decoding. What this adds is what a general
decoder does not: one flat pass (an explicit stack, never recursion) that refuses a blob that is
not exactly one element or nests deeper than a cap, so hostile input cannot make a parser
recurse; and, for the senders that stream BER (`openssl cms -stream`), the same bytes with
definite lengths, which is what they signed and what asn1crypto reads best.
"""

from __future__ import annotations

_CONSTRUCTED = 0x20
_OCTETS = 0x04
_SEGMENTED_OCTETS = _OCTETS | _CONSTRUCTED
_MAX_LENGTH_OCTETS = 4  # 4 GiB is far beyond any cap callers apply


class FramingError(ValueError):
    """The bytes are not one well-formed BER element within the nesting cap."""


def _header(data: bytes, pos: int, bound: int) -> tuple[int, int, int]:
    """(tag, content offset, content length or -1 for indefinite) of the element at `pos`."""
    if pos + 2 > bound:
        raise FramingError(f"truncated element at offset {pos}")
    tag, first = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F:
        raise FramingError(f"high tag numbers are not used in CMS (offset {pos})")
    if tag == 0:
        raise FramingError(f"unexpected end-of-contents marker at offset {pos}")
    if first < 0x80:
        return tag, pos + 2, first
    if first == 0x80:
        if not tag & _CONSTRUCTED:
            raise FramingError(f"primitive element with indefinite length at offset {pos}")
        return tag, pos + 2, -1
    body = pos + 2 + (first & 0x7F)
    if first & 0x7F > _MAX_LENGTH_OCTETS or body > bound:
        raise FramingError(f"malformed length at offset {pos}")
    return tag, body, int.from_bytes(data[pos + 2 : body], "big")


def check(data: bytes, max_depth: int) -> bool:
    """Refuse `data` unless it is exactly one element nested at most `max_depth` deep; say
    whether it uses an indefinite length anywhere (it is BER, not DER, then).

    A definite-length element too short to hold the remaining allowed levels cannot exceed the
    cap, and one with no 0x80 octet inside cannot hold an indefinite length: its content is
    skipped, which keeps the pass cheap on the DER that nearly every sender uses."""
    limit = len(data)
    if not limit:
        raise FramingError("no data")
    stack: list[int] = []  # enclosing limits; -1 marks an indefinite-length element
    pos = 0
    current = limit
    indefinite = False
    while True:
        if not stack and pos:
            if pos != limit:
                raise FramingError(f"{limit - pos} bytes of trailing data")
            return indefinite
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
        if pos + 2 <= bound and data[pos + 1] < 0x80 and data[pos] and ~data[pos] & 0x1F:
            tag, body, length = data[pos], pos + 2, data[pos + 1]  # the common short form
        else:
            tag, body, length = _header(data, pos, bound)
        if length < 0:
            indefinite = True
        else:
            end = body + length
            if end > bound:
                raise FramingError(f"element at offset {pos} runs past its container")
            if not tag & _CONSTRUCTED or (
                length < 2 * (max_depth - len(stack)) and data.find(0x80, body, end) < 0
            ):
                pos = end
                continue
        if len(stack) >= max_depth:
            raise FramingError(f"nesting deeper than {max_depth} levels")
        stack.append(current)
        current = body + length if length >= 0 else -1
        pos = body


def to_definite(data: bytes) -> bytes:
    """`data` (which `check` accepted) with every length definite and OCTET STRINGs sent in
    segments joined, content otherwise as sent: the DER a streaming BER sender had signed."""
    # Frames of the constructed elements being rebuilt: (enclosing limit, tag, parts so far).
    # Inside a segmented OCTET STRING the parts are the segments' contents, not elements.
    stack: list[tuple[int, int, list[bytes]]] = []
    parts: list[bytes] = []
    tag = 0
    pos = 0
    current = len(data)
    while True:
        closing = pos == current if current >= 0 else data[pos : pos + 2] == b"\x00\x00"
        if closing:
            if not stack:
                return b"".join(parts)
            if current < 0:
                pos += 2
            content = b"".join(parts)
            done = tag
            current, tag, parts = stack.pop()
            if done == _SEGMENTED_OCTETS:
                parts.append(content if tag == _SEGMENTED_OCTETS else _encode(_OCTETS, content))
            else:
                parts.append(_encode(done, content))
            continue
        child, body, length = _header(data, pos, len(data))
        if tag == _SEGMENTED_OCTETS and child & ~_CONSTRUCTED != _OCTETS:
            raise FramingError(f"a segment of an OCTET STRING is not one (offset {pos})")
        if not child & _CONSTRUCTED:
            parts.append(data[body if tag == _SEGMENTED_OCTETS else pos : body + length])
            pos = body + length
            continue
        stack.append((current, tag, parts))
        tag, parts = child, []
        current = body + length if length >= 0 else -1
        pos = body


def _encode(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(raw))) + raw + content
