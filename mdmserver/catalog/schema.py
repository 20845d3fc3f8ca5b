"""Typed, read-only view of Apple's MDM schema, from the index committed in this package.

The index (schema_index.json, built by scripts/gen_schema_index.py) is parsed
once on first use. Key specs are materialised lazily because some YAML
definitions are recursive (an app item lists its own sub-apps), and each key's
platform support is resolved by layering its overrides on its parent's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from typing import Any, Literal, Protocol

__all__ = [
    "PLATFORMS",
    "CommandSpec",
    "KeySpec",
    "PayloadSpec",
    "Platform",
    "PlatformSupport",
    "checkin_spec",
    "command_spec",
    "common_payload_keys",
    "message_types",
    "parse_version",
    "payload_types",
    "profile_payload_spec",
    "profile_spec",
    "request_types",
    "supports",
]

Platform = Literal["iOS", "macOS", "tvOS", "visionOS", "watchOS"]
PLATFORMS: tuple[Platform, ...] = ("iOS", "macOS", "tvOS", "visionOS", "watchOS")
KeyType = Literal[
    "string", "integer", "real", "boolean", "data", "date", "dictionary", "array", "any"
]
_RawOS = Mapping[str, Mapping[str, Any]]
_VERSION = re.compile(r"\d+(?:\.\d+)*")


@dataclass(frozen=True, slots=True)
class PlatformSupport:
    """What Apple says about one platform; `introduced is None` means "n/a" there."""

    introduced: str | None
    deprecated: str | None = None
    removed: str | None = None
    supervised: bool | None = None
    requiresdep: bool | None = None
    devicechannel: bool | None = None
    userchannel: bool | None = None
    userapprovedmdm: bool | None = None
    accessrights: str | None = None
    multiple: bool | None = None
    allowmanualinstall: bool | None = None
    userenrollment: str | None = None
    sharedipad: str | None = None
    sharedipad_devicechannel: bool | None = None
    sharedipad_userchannel: bool | None = None

    @property
    def available(self) -> bool:
        return self.introduced is not None

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any] | None) -> PlatformSupport:
        if not raw:
            return _UNAVAILABLE
        ipad = raw.get("sharedipad") or {}
        introduced = raw.get("introduced")
        return cls(
            introduced=None if introduced in (None, "n/a") else introduced,
            deprecated=_version_or_none(raw.get("deprecated")),
            removed=_version_or_none(raw.get("removed")),
            supervised=raw.get("supervised"),
            requiresdep=raw.get("requiresdep"),
            devicechannel=raw.get("devicechannel"),
            userchannel=raw.get("userchannel"),
            userapprovedmdm=raw.get("userapprovedmdm"),
            accessrights=raw.get("accessrights"),
            multiple=raw.get("multiple"),
            allowmanualinstall=raw.get("allowmanualinstall"),
            userenrollment=raw.get("userenrollment"),
            sharedipad=ipad.get("mode"),
            sharedipad_devicechannel=ipad.get("devicechannel"),
            sharedipad_userchannel=ipad.get("userchannel"),
        )


_UNAVAILABLE = PlatformSupport(introduced=None)


def _version_or_none(value: str | None) -> str | None:
    return None if value in (None, "n/a") else value


def _layer(parent: _RawOS, own: _RawOS | None) -> _RawOS:
    """A key inherits its parent's support and overrides only what it states."""
    if not own:
        return parent
    merged = dict(parent)
    for platform, fields in own.items():
        base = parent.get(platform, {})
        entry = {**base, **fields}
        if "sharedipad" in fields and "sharedipad" in base:
            entry["sharedipad"] = {**base["sharedipad"], **fields["sharedipad"]}
        merged[platform] = entry
    return merged


@dataclass(frozen=True, eq=False)
class KeySpec:
    """One key of a command, response, check-in message or profile payload.

    For a dictionary `subkeys` are its keys; for an array they are the item
    shape (several shapes: the array mixes dictionaries told apart by a
    discriminator key); for a scalar they list its known values.
    """

    name: str
    type: KeyType
    required: bool = False
    wildcard: bool = False
    enum: tuple[Any, ...] | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    default: Any = None
    format: str | None = None
    valuetype: str | None = None
    repetition: tuple[int, int] | None = None
    combine: str | None = None
    raw_os: _RawOS = field(default_factory=dict, repr=False)
    _sub: Any = field(default=None, repr=False)
    _alt: Any = field(default=None, repr=False)

    @classmethod
    def _from_node(cls, node: Mapping[str, Any], parent_os: _RawOS) -> KeySpec:
        rep = node.get("rep")
        enum = node.get("enum")
        return cls(
            name=node["key"],
            type=node["type"],
            required=node.get("required", False),
            wildcard=node.get("wild", False),
            enum=tuple(enum) if enum is not None else None,
            minimum=node.get("min"),
            maximum=node.get("max"),
            default=node.get("default"),
            format=node.get("format"),
            valuetype=node.get("valuetype"),
            repetition=(rep[0], rep[1]) if rep else None,
            combine=node.get("combine"),
            raw_os=_layer(parent_os, node.get("os")),
            _sub=node.get("sub"),
            _alt=node.get("alt"),
        )

    @cached_property
    def os(self) -> Mapping[str, PlatformSupport]:
        """Effective support per platform, after inheritance."""
        return {p: PlatformSupport.from_raw(self.raw_os.get(p)) for p in PLATFORMS}

    def available_on(self, platform: str) -> bool:
        support = self.os.get(platform)
        return support is not None and support.available

    @cached_property
    def subkeys(self) -> tuple[KeySpec, ...]:
        sub = self._sub
        if sub is None:
            return ()
        if isinstance(sub, tuple):
            return sub
        nodes = _index().defs[sub] if isinstance(sub, int) else sub
        return tuple(KeySpec._from_node(n, self.raw_os) for n in nodes)

    @cached_property
    def by_name(self) -> Mapping[str, KeySpec]:
        """Named subkeys of a dictionary (placeholders excluded)."""
        return {k.name: k for k in self.subkeys if not k.wildcard}

    @cached_property
    def wildcard_key(self) -> KeySpec | None:
        """The spec any other key name in this dictionary must match, if allowed."""
        return next((k for k in self.subkeys if k.wildcard), None)

    @property
    def item(self) -> KeySpec | None:
        """The element shape of an array (the first, when there are several)."""
        return self.subkeys[0] if self.type == "array" and self.subkeys else None

    @cached_property
    def alternative(self) -> KeySpec | None:
        """A second accepted shape, for keys Apple documents as polymorphic."""
        return KeySpec._from_node(self._alt, self.raw_os) if self._alt else None

    def key(self, *names: str) -> KeySpec | None:
        """A nested key by name, walking through array items transparently."""
        spec: KeySpec | None = self
        for name in names:
            while spec is not None and spec.type == "array":
                spec = spec.item
            spec = spec.by_name.get(name) if spec is not None else None
        return spec

    def required_for(self, platform: str | None) -> tuple[str, ...]:
        """Names of subkeys that must be present, honouring per-platform "n/a".

        Without a platform a key counts as required only where it exists on
        every platform this container does (DeviceName is n/a on iOS).
        """
        cache_ = self._required_cache
        if platform not in cache_:
            if platform is None:
                mine = [p for p in PLATFORMS if self.available_on(p)]
                names = tuple(
                    k.name
                    for k in self.by_name.values()
                    if k.required and all(k.available_on(p) for p in mine)
                )
            else:
                names = tuple(
                    k.name for k in self.by_name.values() if k.required and k.available_on(platform)
                )
            cache_[platform] = names
        return cache_[platform]

    @cached_property
    def _required_cache(self) -> dict[str | None, tuple[str, ...]]:
        return {}

    @staticmethod
    def container(name: str, os: _RawOS, keys: tuple[KeySpec, ...]) -> KeySpec:
        """A synthetic dictionary holding `keys`, used for message roots."""
        return KeySpec(name=name, type="dictionary", raw_os=os, _sub=keys)


@dataclass(frozen=True, eq=False)
class _Spec:
    name: str
    raw_os: _RawOS = field(repr=False)
    _keys: Any = field(repr=False)
    _response: Any = field(default=None, repr=False)

    @cached_property
    def os(self) -> Mapping[str, PlatformSupport]:
        return {p: PlatformSupport.from_raw(self.raw_os.get(p)) for p in PLATFORMS}

    @cached_property
    def root(self) -> KeySpec:
        """The message body as a dictionary spec."""
        return KeySpec(name=self.name, type="dictionary", raw_os=self.raw_os, _sub=self._keys)

    @property
    def keys(self) -> tuple[KeySpec, ...]:
        return self.root.subkeys

    def key(self, *names: str) -> KeySpec | None:
        return self.root.key(*names)


@dataclass(frozen=True, eq=False)
class CommandSpec(_Spec):
    """An MDM command (or check-in message): request keys and the device's answer keys."""

    @property
    def request_type(self) -> str:
        return self.name

    @cached_property
    def response_root(self) -> KeySpec:
        return KeySpec(name=self.name, type="dictionary", raw_os=self.raw_os, _sub=self._response)

    @property
    def response_keys(self) -> tuple[KeySpec, ...]:
        return self.response_root.subkeys


@dataclass(frozen=True, eq=False)
class PayloadSpec(_Spec):
    """A configuration-profile payload type (keys only as the YAML lists them)."""

    @property
    def payload_type(self) -> str:
        return self.name


@dataclass(frozen=True)
class _Index:
    raw: Mapping[str, Any]
    defs: list[Any]


@cache
def _index() -> _Index:
    text = resources.files(__package__).joinpath("schema_index.json").read_text("ascii")
    raw = json.loads(text)
    return _Index(raw=raw, defs=raw["defs"])


@cache
def _spec(section: str, name: str) -> _Spec | None:
    entry = _index().raw[section].get(name)
    if entry is None:
        return None
    cls = PayloadSpec if section == "profiles" else CommandSpec
    return cls(name, entry["os"], entry["keys"], entry.get("response"))


def command_spec(request_type: str) -> CommandSpec | None:
    spec = _spec("commands", request_type)
    return spec if isinstance(spec, CommandSpec) else None


def checkin_spec(message_type: str) -> CommandSpec | None:
    """Spec of a check-in message (Authenticate, TokenUpdate, ...)."""
    spec = _spec("checkin", message_type)
    return spec if isinstance(spec, CommandSpec) else None


def profile_payload_spec(payload_type: str) -> PayloadSpec | None:
    spec = _spec("profiles", payload_type)
    return spec if isinstance(spec, PayloadSpec) else None


@cache
def profile_spec() -> PayloadSpec:
    """The profile wrapper (PayloadType "Configuration") that carries payloads."""
    entry = _index().raw["profile_toplevel"]
    return PayloadSpec("Configuration", entry["os"], entry["keys"])


@cache
def common_payload_keys() -> tuple[KeySpec, ...]:
    """PayloadIdentifier, PayloadUUID, ...: keys every payload may carry."""
    entry = _index().raw["profile_common"]
    return PayloadSpec("CommonPayloadKeys", entry["os"], entry["keys"]).keys


def request_types() -> list[str]:
    return sorted(_index().raw["commands"])


def message_types() -> list[str]:
    return sorted(_index().raw["checkin"])


def payload_types() -> list[str]:
    return sorted(_index().raw["profiles"])


def parse_version(version: str) -> tuple[int, int, int]:
    """Ordered triple, so "17" < "17.0.1" < "17.1"; trailing build text is ignored."""
    match = _VERSION.match(version.strip())
    if match is None:
        raise ValueError(f"not an OS version: {version!r}")
    parts = [int(p) for p in match.group().split(".")][:3]
    parts += [0] * (3 - len(parts))
    return parts[0], parts[1], parts[2]


class _HasSupport(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def os(self) -> Mapping[str, PlatformSupport]: ...


def supports(
    spec: _HasSupport,
    platform: Platform,
    *,
    os_version: str | None = None,
    supervised: bool | None = None,
    user_enrollment: bool = False,
    user_channel: bool = False,
    dep: bool | None = None,
) -> str | None:
    """None when the device can take `spec`, else a sentence saying why not.

    Unknown facts (`supervised`/`dep` left as None, no `os_version`) are given
    the benefit of the doubt.
    """
    name = spec.name
    support = spec.os.get(platform, _UNAVAILABLE)
    if not support.available:
        return f"{name}: not supported on {platform}"
    if os_version is not None:
        running = parse_version(os_version)
        if running < parse_version(support.introduced or "0"):
            return f"{name} introduced in {platform} {support.introduced}, device runs {os_version}"
        if support.removed and running >= parse_version(support.removed):
            return f"{name} removed in {platform} {support.removed}, device runs {os_version}"
    if support.supervised and supervised is False:
        return f"{name} requires a supervised device"
    if support.requiresdep and dep is False:
        return f"{name} requires a device enrolled through Automated Device Enrollment"
    if user_enrollment and support.userenrollment == "forbidden":
        return f"{name} is not available with User Enrollment"
    if not user_enrollment and support.userenrollment == "required":
        return f"{name} requires User Enrollment"
    channel = "userchannel" if user_channel else "devicechannel"
    allowed = getattr(support, channel)
    if allowed is None:
        allowed = getattr(support, f"sharedipad_{channel}")
    if allowed is False:
        return f"{name} is not supported on the {'user' if user_channel else 'device'} channel"
    return None
