"""``--set Key=Value`` for the CLI: the value is read by the key's type in Apple's schema.

The result is the same JSON form the API takes (data as base64, dates as ISO text), so the CLI
and the API share one path from there. ``Key.Sub=Value`` sets a key of a dictionary; ``@path``
reads a <data> value from a file (``--set Payload=@profile.mobileconfig``).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from mdmserver.catalog.schema import CommandSpec, KeySpec

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


class BadAssignment(ValueError):
    """A --set that cannot be read; the message names the key."""


def parse_value(spec: KeySpec | None, text: str, name: str) -> Any:
    kind = spec.type if spec is not None else "any"
    try:
        if kind == "string":
            return text
        if kind == "integer":
            return int(text)
        if kind == "real":
            return float(text)
        if kind == "boolean":
            if text.lower() in _TRUE | _FALSE:
                return text.lower() in _TRUE
            raise BadAssignment(f"{name}: expected true or false, got {text!r}")
        if kind == "data":
            if text.startswith("@"):
                return base64.b64encode(Path(text[1:]).read_bytes()).decode("ascii")
            return text
        if kind in ("array", "dictionary"):
            if text.lstrip().startswith(("[", "{")):
                return json.loads(text)
            if kind == "array":
                item = spec.item if spec is not None else None
                return [parse_value(item, part.strip(), name) for part in text.split(",")]
            raise BadAssignment(f"{name}: expected a JSON object")
        if kind == "date":
            return text
        try:
            return json.loads(text)  # a key the schema does not know: JSON if it parses
        except json.JSONDecodeError:
            return text
    except (ValueError, OSError) as exc:
        if isinstance(exc, BadAssignment):
            raise
        raise BadAssignment(f"{name}: cannot read {text!r} as <{kind}>: {exc}") from None


def apply_assignments(spec: CommandSpec, assignments: tuple[str, ...]) -> dict[str, Any]:
    """The command dictionary (without RequestType) the ``--set`` options describe."""
    command: dict[str, Any] = {}
    for assignment in assignments:
        path, sep, text = assignment.partition("=")
        if not sep or not path:
            raise BadAssignment(f"--set {assignment!r}: expected Key=Value")
        names = path.split(".")
        key_spec = spec.key(*names)
        where = command
        for name in names[:-1]:
            where = where.setdefault(name, {})
            if not isinstance(where, dict):
                raise BadAssignment(f"{path}: {name} is already set to a value")
        where[names[-1]] = parse_value(key_spec, text, path)
    return command
