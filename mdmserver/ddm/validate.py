"""Checking an admin's declaration against Apple's declaration schema before it is stored.

A declaration is refused (every finding naming its key path) when its type is unknown or
supported on no OS, a payload key has the wrong type, a required key is missing, a value is
outside its documented range, or a key exists on none of the OS versions that take the type.
Unknown keys and status items are warnings: they may only mean the index lags Apple.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from mdmserver.catalog.schema import PLATFORMS, KeySpec, parse_version
from mdmserver.catalog.validate import ValidationError, validate_value
from mdmserver.ddm.schema import DeclarationSpec, declaration_spec, declaration_types, status_spec
from mdmserver.errors import Unprocessable

__all__ = [
    "MAX_IDENTIFIER_BYTES",
    "DeclarationRefused",
    "check_declaration",
    "os_problems",
    "references",
]

MAX_IDENTIFIER_BYTES = 64  # declarationbase.yaml: "should not exceed 64 octets"
BODY_KEYS = frozenset({"Type", "Payload"})
STATUS_SUBSCRIPTIONS = "com.apple.configuration.management.status-subscriptions"
MAX_DEPTH = 16


class DeclarationRefused(Unprocessable, ValueError):
    """The declaration is not stored; ``errors`` name each key path and what is wrong."""

    def __init__(self, errors: list[ValidationError]) -> None:
        self.errors = errors
        shown = "; ".join(str(e) for e in errors[:5])
        super().__init__(f"declaration refused: {shown}")
        self.extra["problems"] = [{"path": e.path, "message": e.message} for e in errors]


def check_declaration(
    identifier: str, body: Any
) -> tuple[DeclarationSpec, dict[str, Any], list[ValidationError]]:
    """The type's spec, the payload and the warnings; DeclarationRefused on any error."""
    errors: list[ValidationError] = []
    if not identifier or len(identifier.encode()) > MAX_IDENTIFIER_BYTES:
        errors.append(ValidationError("Identifier", f"1 to {MAX_IDENTIFIER_BYTES} octets"))
    if not isinstance(body, Mapping):
        raise DeclarationRefused([*errors, ValidationError("", "expected a JSON object")])
    errors += [
        ValidationError(str(k), "unknown field; a declaration is {Type, Payload}")
        for k in sorted(set(body) - BODY_KEYS, key=str)
    ]
    declaration_type, payload = body.get("Type"), body.get("Payload", {})
    if not isinstance(declaration_type, str):
        raise DeclarationRefused([*errors, ValidationError("Type", "required string")])
    spec = declaration_spec(declaration_type)
    if spec is None:
        close = difflib.get_close_matches(declaration_type, declaration_types(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        message = f"unknown declaration type {declaration_type!r}{hint}"
        raise DeclarationRefused([*errors, ValidationError("Type", message)])
    if not isinstance(payload, Mapping):
        raise DeclarationRefused([*errors, ValidationError("Payload", "expected an object")])
    platforms = [p for p in PLATFORMS if spec.os[p].available]
    if not platforms:
        errors.append(ValidationError("Type", f"{declaration_type} is supported on no OS"))
    findings = validate_value(spec.root, dict(payload), "Payload")
    findings += _unsupported_keys(spec.root, payload, "Payload", platforms)
    if declaration_type == STATUS_SUBSCRIPTIONS:
        findings += _unknown_status_items(payload)
    errors += [f for f in findings if f.severity == "error"]
    if errors:
        raise DeclarationRefused(errors)
    return spec, dict(payload), [f for f in findings if f.severity == "warning"]


def _unsupported_keys(
    spec: KeySpec, value: Mapping[str, Any], path: str, platforms: Sequence[str]
) -> list[ValidationError]:
    """Keys that exist on none of the OS versions the declaration type itself exists on."""
    found = []
    for name, item in value.items():
        child = spec.by_name.get(name)
        if child is None:
            continue
        where = f"{path}.{name}"
        on = [p for p in platforms if child.available_on(p)]
        if not on:
            found.append(
                ValidationError(where, f"{name} is supported on none of {', '.join(platforms)}")
            )
        elif child.type == "dictionary" and isinstance(item, Mapping):
            found += _unsupported_keys(child, item, where, on)
    return found


def _unknown_status_items(payload: Mapping[str, Any]) -> list[ValidationError]:
    items = payload.get("StatusItems")
    if not isinstance(items, list):
        return []
    return [
        ValidationError(
            f"Payload.StatusItems[{i}].Name", f"unknown status item {e['Name']!r}", "warning"
        )
        for i, e in enumerate(items)
        if isinstance(e, Mapping)
        and isinstance(e.get("Name"), str)
        and status_spec(e["Name"]) is None
        and not e["Name"].endswith(".*")
    ]


def references(declaration_type: str, payload: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key path, identifier) of the declarations this one needs: an activation's
    configurations, a configuration's assets (keys named ...AssetReference)."""
    spec = declaration_spec(declaration_type)
    if spec is None:
        return []
    if spec.cls == "activation":
        listed = payload.get("StandardConfigurations")
        if isinstance(listed, list):
            return [
                (f"Payload.StandardConfigurations[{i}]", v)
                for i, v in enumerate(listed)
                if isinstance(v, str)
            ]
        return []
    return list(_asset_references(payload, "Payload"))


def _asset_references(value: Any, path: str, depth: int = 0) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if depth > MAX_DEPTH:  # no declaration nests references this deep
        return found
    if isinstance(value, Mapping):
        for name, item in value.items():
            where = f"{path}.{name}"
            if str(name).endswith("AssetReference") and isinstance(item, str):
                found.append((where, item))
            elif str(name).endswith("AssetReferences") and isinstance(item, list):
                found += [(f"{where}[{i}]", v) for i, v in enumerate(item) if isinstance(v, str)]
            else:
                found += _asset_references(item, where, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _asset_references(item, f"{path}[{i}]", depth + 1)
    return found


def os_problems(
    spec: DeclarationSpec, payload: Mapping[str, Any], platform: str, os_version: str | None
) -> list[ValidationError]:
    """Why a device of this platform and OS version cannot take the declaration: the type or
    a payload key is not on that platform, or came in a later version (errors name the path)."""
    reason = spec.unsupported(platform, os_version, user_channel=False)
    if reason is not None:
        return [ValidationError("Type", reason)]
    return _key_os_problems(spec.root, payload, "Payload", platform, os_version)


def _key_os_problems(
    spec: KeySpec, value: Mapping[str, Any], path: str, platform: str, os_version: str | None
) -> list[ValidationError]:
    found = []
    for name, item in value.items():
        child = spec.by_name.get(name)
        if child is None:
            continue
        where = f"{path}.{name}"
        support = child.os[platform]
        if not support.available:
            others = [p for p in PLATFORMS if child.available_on(p)]
            found.append(
                ValidationError(
                    where, f"{name} is not supported on {platform} (only {', '.join(others)})"
                )
            )
        elif os_version and support.introduced and _older(os_version, support.introduced):
            found.append(
                ValidationError(
                    where, f"{name} needs {platform} {support.introduced}, devices run {os_version}"
                )
            )
        elif child.type == "dictionary" and isinstance(item, Mapping):
            found += _key_os_problems(child, item, where, platform, os_version)
    return found


def _older(running: str, introduced: str) -> bool:
    try:
        return parse_version(running) < parse_version(introduced)
    except ValueError:
        return False
