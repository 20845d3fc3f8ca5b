"""JSON has no <data> or <date>: how the API writes them, converted using the schema's types.

Decision: a <data> value is a base64 string (standard alphabet, padding optional); a <date>
is an ISO 8601 string ("2026-01-31T12:00:00Z"; without an offset it is taken as UTC). Only
keys the schema types as data/date are converted, so a string stays a string everywhere else.
Results go the other way: bytes become base64 and dates ISO strings.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import plistlib
from collections.abc import Mapping
from typing import Any

from mdmserver.catalog.schema import KeySpec
from mdmserver.commands.base import Problem


def _child(path: str, name: str) -> str:
    return f"{path}.{name}"


def from_json(spec: KeySpec, value: Any, path: str, problems: list[Problem]) -> Any:
    """``value`` with base64 strings and ISO dates turned into bytes and datetimes."""
    kind = spec.type
    if kind == "data" and isinstance(value, str):
        try:
            return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
        except (binascii.Error, ValueError):
            problems.append(Problem(path, "expected base64 text for a <data> value"))
            return value
    if kind == "date" and isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            problems.append(Problem(path, f"expected an ISO 8601 date, got {value!r}"))
            return value
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    if kind == "dictionary" and isinstance(value, Mapping):
        out = {}
        for name, item in value.items():
            child = spec.by_name.get(name) or spec.wildcard_key
            out[name] = from_json(child, item, _child(path, name), problems) if child else item
        return out
    if kind == "array" and isinstance(value, list):
        return [
            from_json(shape, item, f"{path}[{i}]", problems)
            if (shape := _shape(spec, item))
            else item
            for i, item in enumerate(value)
        ]
    return value


def _shape(spec: KeySpec, item: Any) -> KeySpec | None:
    """The array item's shape; for mixed arrays (Settings) the one whose fixed key matches."""
    shapes = spec.subkeys
    if len(shapes) <= 1 or not isinstance(item, Mapping):
        return shapes[0] if shapes else None
    for shape in shapes:
        fixed = [k for k in shape.by_name.values() if k.required and k.enum and len(k.enum) == 1]
        if fixed and all(item.get(k.name) == k.enum[0] for k in fixed):  # type: ignore[index]
            return shape
    return None


def to_json(value: Any) -> Any:
    """A plist value in JSON-safe form: bytes → base64, dates → ISO 8601 (UTC)."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.isoformat().replace("+00:00", "Z")
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, plistlib.UID):
        return value.data
    return value
