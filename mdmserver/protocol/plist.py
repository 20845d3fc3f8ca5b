"""Safe, XML-only plist loading.

Every device request body passes through `loads`, so the checks before the
parser are plain bytes operations (a few hundred nanoseconds on a poll) and the
parser is the standard library's, which already refuses entity declarations.
"""

from __future__ import annotations

import binascii
import datetime
import plistlib
import re
from collections.abc import Mapping
from typing import Any
from xml.parsers.expat import ExpatError

from mdmserver.protocol.errors import ProtocolError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "dumps",
    "loads",
    "type_name",
    "typed_value",
]

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_DEPTH = 32

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_USUAL_DECLARATIONS = (
    b'<?xml version="1.0" encoding="UTF-8"?>',
    b"<?xml version='1.0' encoding='UTF-8'?>",
)
# An entity declaration anywhere, or a DOCTYPE that opens an internal subset.
_DTD_HAZARD = re.compile(rb"<!(?:entity|doctype[^>\[]*\[)", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""encoding\s*=\s*["']([^"']*)["']""")
_ACCEPTED_ENCODINGS = frozenset({b"utf-8", b"utf8", b"us-ascii", b"ascii"})

_TYPE_NAMES: dict[type, str] = {
    str: "string",
    bytes: "data",
    bytearray: "data",
    bool: "boolean",
    int: "integer",
    float: "real",
    datetime.datetime: "date",
    dict: "dictionary",
    list: "array",
}


def type_name(kind: type) -> str:
    """The plist name of a Python type, for messages a device developer recognises."""
    for klass in kind.__mro__:
        name = _TYPE_NAMES.get(klass)
        if name is not None:
            return name
    return kind.__name__


def typed_value(
    message: Mapping[str, Any], key: str, kind: type, *, where: str, required: bool = False
) -> Any:
    """`message[key]` if it has the plist type `kind`, None when absent and optional.

    Booleans are refused where integers are expected: plistlib keeps them apart
    and so does the protocol.
    """
    value = message.get(key)
    if value is None:
        if required:
            raise ProtocolError(f"{where}: key {key!r} is required")
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolError(
            f"{where}: key {key!r} must be {type_name(kind)}, got {type_name(type(value))}"
        )
    return value


def loads(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> dict[str, Any]:
    """Parse an XML plist whose root is a dictionary, or raise ProtocolError saying why not."""
    if isinstance(data, bytearray | memoryview):
        data = bytes(data)
    elif not isinstance(data, bytes):
        raise TypeError(f"plist body must be bytes, got {type(data).__name__}")
    if not data:
        raise ProtocolError("empty body; expected an XML plist")
    if len(data) > max_bytes:
        raise ProtocolError(f"body is {len(data)} bytes; the limit is {max_bytes}")
    _check_prolog(data)
    if _DTD_HAZARD.search(data) is not None:
        raise ProtocolError("DTD entity declarations and internal subsets are not accepted")
    root = _parse(data)
    if not isinstance(root, dict):
        got = "nothing" if root is None else type_name(type(root))
        raise ProtocolError(f"plist root must be a dictionary, got {got}")
    # Only a body with more container tags than the limit can nest that deep.
    if data.count(b"<dict") + data.count(b"<array") > max_depth:
        _check_depth(root, max_depth)
    return root


def dumps(obj: Mapping[str, Any]) -> bytes:
    """Serialise a mapping as an XML plist (devices accept XML; binary gains nothing here)."""
    return plistlib.dumps(dict(obj), fmt=plistlib.FMT_XML)


def _check_prolog(data: bytes) -> None:
    """Refuse binary plists and encodings whose bytes would hide markup from the scan."""
    if data.startswith(b"bplist"):
        raise ProtocolError("binary plists are not accepted; send an XML plist")
    head = data[3:] if data.startswith(_UTF8_BOM) else data
    if head.startswith(_UTF16_BOMS) or b"\x00" in head[:4]:
        raise ProtocolError("plist must be UTF-8 encoded")
    if head.startswith(_USUAL_DECLARATIONS):
        return
    if head.startswith(b"<?xml"):
        end = head.find(b"?>", 0, 512)
        match = _XML_ENCODING.search(head, 0, end if end != -1 else 512)
        if match is not None and match.group(1).lower() not in _ACCEPTED_ENCODINGS:
            encoding = match.group(1).decode("ascii", "replace")
            raise ProtocolError(f"plist must be UTF-8 encoded, not {encoding!r}")


def _parse(data: bytes) -> Any:
    """Run plistlib, turning each of its failure modes into a readable ProtocolError."""
    try:
        return plistlib.loads(data, fmt=plistlib.FMT_XML)
    except ExpatError as exc:
        raise ProtocolError(f"malformed XML: {exc}") from exc
    except plistlib.InvalidFileException as exc:
        raise ProtocolError(f"not a valid XML plist: {exc}") from exc
    except binascii.Error as exc:
        raise ProtocolError(f"invalid base64 in <data>: {exc}") from exc
    except ValueError as exc:
        raise ProtocolError(f"invalid plist value: {exc}") from exc
    except (IndexError, KeyError, AttributeError, TypeError) as exc:
        # plistlib trips over some misplaced elements (a <key> outside a <dict>,
        # an unparseable <date>) with these instead of a ValueError.
        raise ProtocolError("invalid plist structure: misplaced element or bad <date>") from exc


def _check_depth(root: dict[str, Any], max_depth: int) -> None:
    """Walk the containers without recursion, so a deep body cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise ProtocolError(f"plist nests deeper than {max_depth} levels")
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
