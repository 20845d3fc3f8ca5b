"""One bound for every input: the length and character rule of each string a device or an admin
sends, the range of each integer, the depth of JSON.

Checked before anything is stored, so SQLite (which stores a 100k-character UDID) and PostgreSQL
(which answers a DataError for it, or for a NUL) give the same 4xx for the same input. Each text
rule names the column it ends up in; tests/test_bounds.py asserts that every ``max_len`` here is
that column's length in ``mdmserver/storage/sql/schema.py``, so the two cannot drift apart.

Pure: no Flask, no database, no imports from the rest of the package (the protocol layer, the
admin API and the inventory parser all use it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHANNEL_ID",
    "CHECKIN_BYTES",
    "CHECKIN_TEXT",
    "COMMAND_UUID",
    "JSON_MAX_DEPTH",
    "JSON_MAX_INT_DIGITS",
    "BlobRule",
    "BoundError",
    "IntRule",
    "TextRule",
    "control_character",
    "loads_json",
]


class BoundError(ValueError):
    """An input outside its bound; the message names the field and the rule it broke."""


def control_character(value: str) -> str | None:
    """The first control character (C0, DEL, C1) or lone surrogate in ``value``, or None.

    ``str.isprintable`` (one C loop) answers for almost every real string; only strings it
    refuses, which may hold harmless format characters such as an emoji's zero-width joiner or a
    no-break space, are looked at character by character.
    """
    if value.isprintable():
        return None
    for char in value:
        if char < " " or "\x7f" <= char <= "\x9f" or "\ud800" <= char <= "\udfff":
            return char
    return None


@dataclass(frozen=True, slots=True)
class TextRule:
    """A string stored in ``column`` (``table.column``): at most ``max_len`` characters, no
    control characters, none of ``forbidden``; ``empty`` says whether "" is allowed."""

    column: str
    max_len: int
    forbidden: str = ""
    empty: bool = True

    def check(self, value: str, name: str) -> str:
        problem = self.problem(value)
        if problem is not None:
            raise BoundError(f"{name} {problem}")
        return value

    def problem(self, value: str) -> str | None:
        if len(value) > self.max_len:
            return f"is longer than {self.max_len} characters ({len(value)})"
        if not value and not self.empty:
            return "must not be empty"
        char = control_character(value)
        if char is not None:
            return f"contains the control character {char!r}"
        for char in self.forbidden:
            if char in value:
                return f"must not contain {char!r}"
        return None


@dataclass(frozen=True, slots=True)
class BlobRule:
    """Bytes stored hex-encoded in ``column``, so at most half its length."""

    column: str
    max_len: int

    def check(self, value: bytes, name: str) -> bytes:
        if len(value) > self.max_len:
            raise BoundError(f"{name} is longer than {self.max_len} bytes ({len(value)})")
        return value


@dataclass(frozen=True, slots=True)
class IntRule:
    """An integer (``bool`` is not one) in ``low..high``, both included."""

    low: int
    high: int

    def check(self, value: object, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BoundError(f"{name} must be an integer, got {value!r}"[:200])
        if not self.low <= value <= self.high:
            shown = str(value) if abs(value) < 10**30 else f"a {len(str(abs(value)))}-digit number"
            raise BoundError(f"{name} must be between {self.low} and {self.high}, got {shown}")
        return value


INT32_MAX = 2**31 - 1  # an SQL INTEGER on PostgreSQL

# Channel identifiers (issue #12): a user channel's storage key is "<device id>:<user id>" and
# the admin API addresses devices by path segment, so ':' and '/' would let one channel's id
# land on another's row, or make a device unaddressable.
CHANNEL_ID = TextRule("devices.id", 128, forbidden=":/", empty=False)
USER_CHANNEL_ID = TextRule("enrollments.user_id", 128, forbidden=":/", empty=False)
COMMAND_UUID = TextRule("commands.uuid", 64, empty=False)

# Check-in strings by plist key: each is stored in the column named.
CHECKIN_TEXT: dict[str, TextRule] = {
    "Topic": TextRule("devices.topic", 256),
    "DeviceName": TextRule("devices.device_name", 256),
    "ModelName": TextRule("devices.model_name", 128),
    "Model": TextRule("devices.model", 64),
    "OSVersion": TextRule("devices.os_version", 32),
    "BuildVersion": TextRule("devices.build_version", 32),
    "ProductName": TextRule("devices.product_name", 64),
    "SerialNumber": TextRule("devices.serial_number", 64),
    "IMEI": TextRule("devices.imei", 32),
    "MEID": TextRule("devices.meid", 32),
    "PushMagic": TextRule("enrollments.push_magic", 128),
    "UserShortName": TextRule("enrollments.user_short_name", 256),
    "UserLongName": TextRule("enrollments.user_long_name", 256),
}
CHECKIN_BYTES: dict[str, BlobRule] = {
    "Token": BlobRule("enrollments.push_token", 256),  # stored as hex: 512 characters
}

# Inventory facts (the device's answers, normalised): text longer than its column is cut to it.
INVENTORY_TEXT: dict[str, TextRule] = {
    name: TextRule(f"inventory.{name}", length)
    for name, length in (
        ("os_version", 32),
        ("build_version", 32),
        ("model", 64),
        ("model_name", 128),
        ("product_name", 64),
        ("serial_number", 64),
        ("device_name", 256),
    )
}

# Admin input.
TAG = TextRule("device_tags.tag", 128, empty=False)
PROFILE_NAME = TextRule("profiles.name", 128, empty=False)
PROFILE_IDENTIFIER = TextRule("profiles.identifier", 255, empty=False)
TOKEN_USES = IntRule(1, INT32_MAX)  # enroll_tokens.max_uses is an INTEGER
SECONDS_TEN_YEARS = 10 * 366 * 24 * 3600
EXPIRES_IN = IntRule(1, SECONDS_TEN_YEARS)  # seconds; beyond this a date can overflow
# Compliance policy durations: a positive number up to ten years, in the unit of the key's name
# (a larger one overflows the date arithmetic every trust query does).
POLICY_MAX_HOURS = 10 * 366 * 24
POLICY_MAX_DAYS = 10 * 366
JSON_MAX_DEPTH = 32
JSON_MAX_INT_DIGITS = 20  # a 64-bit integer; ranges per field are checked after parsing


def loads_json(raw: bytes | str) -> Any:
    """JSON with bounds: nesting at most JSON_MAX_DEPTH, integers of at most
    JSON_MAX_INT_DIGITS digits, no NaN/Infinity, no NUL (PostgreSQL text cannot hold one) and no
    lone surrogate (``"\\ud800"``: no UTF-8 can encode it) in any string. Raises BoundError
    for those, ``json.JSONDecodeError`` / ``UnicodeDecodeError`` for what is not JSON at all."""
    try:
        data = json.loads(raw, parse_int=_bounded_int, parse_constant=_no_constant)
    except RecursionError:  # the decoder's own recursion guard: far deeper than allowed
        raise BoundError(f"JSON nested deeper than {JSON_MAX_DEPTH} levels") from None
    _check_tree(data)
    return data


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > JSON_MAX_INT_DIGITS:
        raise BoundError(f"an integer of {digits} digits (at most {JSON_MAX_INT_DIGITS})")
    return int(text)


def _no_constant(text: str) -> float:
    raise BoundError(f"{text} is not a JSON number")


def _check_tree(data: Any) -> None:
    """Depth and NUL checks without recursion (the tree may be as deep as the decoder allows)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                raise BoundError("a JSON string contains NUL (\\u0000)")
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                raise BoundError(
                    "a JSON string contains a lone surrogate (\\ud800..\\udfff)"
                ) from None
            continue
        if not isinstance(node, dict | list):
            continue
        if depth > JSON_MAX_DEPTH:
            raise BoundError(f"JSON nested deeper than {JSON_MAX_DEPTH} levels")
        if isinstance(node, dict):
            stack.extend((key, depth) for key in node)
            stack.extend((value, depth + 1) for value in node.values())
        else:
            stack.extend((item, depth + 1) for item in node)
