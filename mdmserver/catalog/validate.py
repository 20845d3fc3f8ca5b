"""Checking commands, profile payloads and check-in messages against Apple's schema.

Two severities: "error" for what a device would reject or misread (wrong
type, missing required key, value outside rangelist/range/format, a key or
command that does not exist on the target platform) and "warning" for what
may only mean the index lags Apple (an unknown key, Settings item or query).
Every key Apple adds each year would otherwise break valid commands.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any, Literal, cast

from mdmserver.catalog.schema import (
    PLATFORMS,
    KeySpec,
    PayloadSpec,
    Platform,
    checkin_spec,
    command_spec,
    common_payload_keys,
    profile_payload_spec,
    profile_spec,
    supports,
)

__all__ = [
    "SchemaValidationError",
    "Severity",
    "ValidationError",
    "assert_valid",
    "validate_checkin",
    "validate_command",
    "validate_payload",
    "validate_profile",
    "validate_value",
]

Severity = Literal["error", "warning"]
UNKNOWN_KEY = "unknown_key"  # a key Apple's schema does not have: a typo, or a newer OS


@dataclass(frozen=True, slots=True)
class ValidationError:
    """One finding; `path` is where in the message, e.g. "Command.Queries[2]"."""

    path: str
    message: str
    severity: Severity = "error"
    # What kind of finding, for callers that judge one kind differently ("unknown_key");
    # not part of the finding's identity.
    code: str = field(default="", compare=False)

    def __str__(self) -> str:
        suffix = " (warning)" if self.severity == "warning" else ""
        return f"{self.path}: {self.message}{suffix}"


class SchemaValidationError(ValueError):
    """Raised by assert_valid; `errors` is the full list of findings."""

    def __init__(self, errors: Sequence[ValidationError]) -> None:
        self.errors = list(errors)
        serious = [e for e in self.errors if e.severity == "error"] or self.errors
        shown = "; ".join(str(e) for e in serious[:5])
        more = f" (and {len(serious) - 5} more)" if len(serious) > 5 else ""
        super().__init__(f"{len(serious)} schema problem(s): {shown}{more}")


def assert_valid(findings: Iterable[ValidationError], *, strict: bool = False) -> None:
    """Raise SchemaValidationError if any finding is an error (any at all when strict)."""
    found = list(findings)
    if any(strict or f.severity == "error" for f in found):
        raise SchemaValidationError(found)


def _not_bool(kind: type | tuple[type, ...]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, kind) and not isinstance(v, bool)


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": _not_bool(int),
    "real": _not_bool((int, float)),
    "boolean": lambda v: isinstance(v, bool),
    "data": lambda v: isinstance(v, bytes | bytearray | memoryview),
    "date": lambda v: isinstance(v, dt.datetime),
    "dictionary": lambda v: isinstance(v, Mapping),
    "array": lambda v: isinstance(v, list | tuple),
    "any": lambda v: True,
}


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@cache
def _discriminator(spec: KeySpec) -> tuple[str, Mapping[Any, KeySpec]] | None:
    """For arrays mixing dictionary shapes (Settings): the key whose one allowed value
    names the shape, e.g. Item = "Wallpaper"."""
    variants = spec.subkeys
    if not all(v.type == "dictionary" for v in variants):
        return None
    for name, first in variants[0].by_name.items():
        keys = [v.by_name.get(name) for v in variants]
        if all(k is not None and k.required and k.enum and len(k.enum) == 1 for k in keys):
            by_value = {k.enum[0]: v for k, v in zip(keys, variants, strict=True) if k and k.enum}
            if len(by_value) == len(variants):
                return first.name, by_value
    return None


def _child(path: str, name: str) -> str:
    if "." in name or "[" in name:
        return f'{path}["{name}"]'
    return f"{path}.{name}" if path else name


class _Checker:
    """Walks a value alongside its spec, collecting findings."""

    __slots__ = ("out", "platform")

    def __init__(self, platform: str | None) -> None:
        if platform is not None and platform not in PLATFORMS:
            raise ValueError(f"unknown platform {platform!r}; expected one of {PLATFORMS}")
        self.platform = platform
        self.out: list[ValidationError] = []

    def error(self, path: str, message: str, severity: Severity = "error", code: str = "") -> None:
        self.out.append(ValidationError(path, message, severity, code))

    def value(self, spec: KeySpec, value: Any, path: str) -> None:
        kind = spec.type
        if not _TYPE_CHECKS[kind](value):
            alt = spec.alternative
            if alt is not None and _TYPE_CHECKS[alt.type](value):
                self.value(alt, value, path)
            else:
                self.error(path, f"expected <{kind}>, got {type(value).__name__}")
            return
        if kind == "dictionary":
            self.dictionary(spec, value, path)
        elif kind == "array":
            self.array(spec, value, path)
        elif kind != "any":
            self.scalar(spec, value, path)

    def scalar(self, spec: KeySpec, value: Any, path: str) -> None:
        if spec.enum is not None and value not in spec.enum:
            self.error(path, f"{value!r} is not one of {list(spec.enum)}")
        if spec.minimum is not None and value < spec.minimum:
            self.error(path, f"{value!r} is below the minimum {spec.minimum}")
        if spec.maximum is not None and value > spec.maximum:
            self.error(path, f"{value!r} is above the maximum {spec.maximum}")
        if spec.format is not None and not _regex(spec.format).fullmatch(value):
            self.error(path, f"{value!r} does not match the format {spec.format}")
        known = spec.by_name  # a scalar's subkeys enumerate its documented values
        if known:
            if value not in known:
                self.error(path, f"unknown value {value!r}", "warning")
            elif self.platform and not known[value].available_on(self.platform):
                self.error(path, f"{value!r} is not supported on {self.platform}", "warning")

    def dictionary(
        self,
        spec: KeySpec,
        value: Mapping[Any, Any],
        path: str,
        extra: frozenset[str] = frozenset(),
    ) -> None:
        known, wildcard, platform = spec.by_name, spec.wildcard_key, self.platform
        for name, item in value.items():
            where = _child(path, str(name))
            if not isinstance(name, str):
                self.error(where, f"key {name!r} is not a string")
                continue
            child = known.get(name) or wildcard
            if child is None:
                if name not in extra:
                    self.error(where, _unknown(name, known), "warning", UNKNOWN_KEY)
                continue
            if platform and not child.wildcard and not child.available_on(platform):
                self.error(where, f"{name} is not supported on {platform}")
                continue
            self.value(child, item, where)
        for name in spec.required_for(platform):
            if name not in value:
                self.error(_child(path, name), "missing required key")

    def array(self, spec: KeySpec, value: Sequence[Any], path: str) -> None:
        shapes = spec.subkeys
        if not shapes:
            return
        rep = shapes[0].repetition
        if rep and not rep[0] <= len(value) <= rep[1]:
            count = f"exactly {rep[0]}" if rep[0] == rep[1] else f"{rep[0]} to {rep[1]}"
            self.error(path, f"expected {count} items, got {len(value)}")
        if len(shapes) == 1:
            for i, item in enumerate(value):
                self.value(shapes[0], item, f"{path}[{i}]")
            return
        for i, item in enumerate(value):
            self.variant(spec, item, f"{path}[{i}]")

    def variant(self, spec: KeySpec, item: Any, path: str) -> None:
        disc = _discriminator(spec)
        if disc is None:
            # No discriminator: judge the item by the shape it fits best.
            trials = []
            for shape in spec.subkeys:
                trial = _Checker(self.platform)
                trial.value(shape, item, path)
                trials.append(trial.out)
            self.out += min(trials, key=lambda found: sum(f.severity == "error" for f in found))
            return
        name, by_value = disc
        if not isinstance(item, Mapping):
            self.error(path, f"expected <dictionary>, got {type(item).__name__}")
        elif name not in item:
            self.error(_child(path, name), "missing required key")
        elif item[name] not in by_value:
            self.error(_child(path, name), f"unknown {name} {item[name]!r}", "warning")
        else:
            shape = by_value[item[name]]
            if self.platform and not shape.available_on(self.platform):
                self.error(_child(path, name), f"{item[name]} is not supported on {self.platform}")
            else:
                self.dictionary(shape, item, path)


def _unknown(name: str, known: Mapping[str, KeySpec]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    if not close:
        close = [k for k in known if k.lower() == name.lower()][:1]
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key {name!r}{hint}"


def _unwrap_command(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept the whole {"CommandUUID", "Command"} envelope as well as its Command."""
    inner = payload.get("Command")
    if isinstance(inner, Mapping) and set(payload) <= {"Command", "CommandUUID"}:
        return inner
    return payload


def validate_command(
    request_type: str, payload: Mapping[str, Any], *, platform: str | None = None
) -> list[ValidationError]:
    """Findings for a command's "Command" dictionary (RequestType inside is optional)."""
    checker = _Checker(platform)
    spec = command_spec(request_type)
    if spec is None:
        return [ValidationError("Command.RequestType", f"unknown RequestType {request_type!r}")]
    body = _unwrap_command(payload)
    stated = body.get("RequestType", request_type)
    if stated != request_type:
        checker.error("Command.RequestType", f"{stated!r} does not match {request_type!r}")
    if platform is not None:
        reason = supports(spec, cast(Platform, platform))
        if reason:
            checker.error("Command.RequestType", reason)
            return checker.out
    checker.dictionary(spec.root, body, "Command", frozenset({"RequestType"}))
    return checker.out


@cache
def _payload_root(spec: PayloadSpec, require_common: bool) -> KeySpec:
    """The payload's own keys plus the Payload* keys every payload shares."""
    own = spec.root.by_name
    common = tuple(
        k if require_common else replace(k, required=False)
        for k in common_payload_keys()
        if k.name not in own
    )
    return KeySpec.container(spec.name, spec.raw_os, spec.keys + common)


def _payload(
    checker: _Checker,
    payload_type: str,
    payload: Mapping[str, Any],
    prefix: str,
    require_common: bool,
) -> None:
    spec = profile_payload_spec(payload_type)
    where = _child(prefix, "PayloadType")
    if spec is None:
        checker.error(where, f"unknown PayloadType {payload_type!r}")
        return
    stated = payload.get("PayloadType", payload_type)
    if stated != payload_type:
        checker.error(where, f"{stated!r} does not match {payload_type!r}")
    if checker.platform is not None:
        reason = supports(spec, checker.platform)
        if reason:
            checker.error(where, reason)
            return
    checker.dictionary(_payload_root(spec, require_common), payload, prefix)


def validate_payload(
    payload_type: str,
    payload: Mapping[str, Any],
    *,
    platform: str | None = None,
    require_common: bool = True,
) -> list[ValidationError]:
    """Findings for one profile payload dictionary.

    PayloadIdentifier, PayloadUUID, PayloadType and PayloadVersion are required
    unless `require_common` is False (payload content not yet wrapped).
    """
    checker = _Checker(platform)
    _payload(checker, payload_type, payload, "", require_common)
    return checker.out


def validate_profile(
    profile: Mapping[str, Any], *, platform: str | None = None
) -> list[ValidationError]:
    """Findings for a whole configuration profile, each payload checked by its type."""
    checker = _Checker(platform)
    checker.dictionary(profile_spec().root, profile, "")
    contents = profile.get("PayloadContent")
    if isinstance(contents, list | tuple):
        for i, item in enumerate(contents):
            prefix = f"PayloadContent[{i}]"
            if not isinstance(item, Mapping):
                checker.error(prefix, f"expected <dictionary>, got {type(item).__name__}")
            elif not isinstance(item.get("PayloadType"), str):
                checker.error(_child(prefix, "PayloadType"), "missing required key")
            else:
                _payload(checker, item["PayloadType"], item, prefix, True)
    return checker.out


def validate_value(
    spec: KeySpec, value: Any, path: str = "", *, platform: str | None = None
) -> list[ValidationError]:
    """Findings for any value against a key spec: for schemas other than the MDM index (the
    DDM declarations of mdmserver.ddm are walked with the same rules)."""
    checker = _Checker(platform)
    checker.value(spec, value, path)
    return checker.out


def validate_checkin(
    message: Mapping[str, Any], *, platform: str | None = None
) -> list[ValidationError]:
    """Findings for a check-in message, dispatched on its MessageType."""
    checker = _Checker(platform)
    message_type = message.get("MessageType")
    spec = checkin_spec(message_type) if isinstance(message_type, str) else None
    if spec is None:
        return [ValidationError("MessageType", f"unknown MessageType {message_type!r}")]
    checker.dictionary(spec.root, message, "")
    return checker.out
