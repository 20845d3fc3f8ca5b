"""Typed view of Apple's DDM schema, from the index committed in this package.

The index (schema_index.json, built by scripts/gen_ddm_index.py from
../shared/apple-device-management/declarative) is parsed once on first use. Key nodes have
the MDM index's shape, so :class:`mdmserver.catalog.schema.KeySpec` and the catalog's
validator read them as they read the MDM schema.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from typing import Any

from mdmserver.catalog.schema import KeySpec, Platform, PlatformSupport, parse_version

__all__ = [
    "DeclarationSpec",
    "channel_scope",
    "declaration_spec",
    "declaration_types",
    "protocol_spec",
    "status_item_names",
    "status_spec",
]

CLASSES = ("activation", "asset", "configuration", "management")


@cache
def _index() -> Mapping[str, Any]:
    text = resources.files(__package__).joinpath("schema_index.json").read_text("ascii")
    return json.loads(text)


def _root(name: str, entry: Mapping[str, Any]) -> KeySpec:
    return KeySpec(name=name, type="dictionary", raw_os=entry["os"], _sub=entry["keys"])


@dataclass(frozen=True, eq=False)
class DeclarationSpec:
    """One declaration type: its class (activation, asset, ...), payload keys and support."""

    name: str
    cls: str
    raw_os: Mapping[str, Mapping[str, Any]]
    root: KeySpec

    @cached_property
    def os(self) -> Mapping[str, PlatformSupport]:
        return self.root.os

    def scopes(self, platform: str) -> tuple[str, ...]:
        """Apple's allowed-scopes: "system" is the device channel, "user" a macOS user's.
        A type that states none (the activation, assets) is not restricted."""
        entry = self.raw_os.get(platform) or {}
        return tuple(entry.get("scopes", ("system", "user")))

    def unsupported(
        self, platform: str | None, os_version: str | None, *, user_channel: bool
    ) -> str | None:
        """None when a channel of that platform and OS version takes this type, else why not.

        An unknown platform or version is given the benefit of the doubt."""
        if platform is None:
            return None
        support = self.os.get(platform)
        if support is None or not support.available:
            return f"{self.name} is not supported on {platform}"
        if os_version and support.introduced:
            try:
                older = parse_version(os_version) < parse_version(support.introduced)
            except ValueError:
                older = False
            if older:
                return (
                    f"{self.name} needs {platform} {support.introduced} or later,"
                    f" the device runs {os_version}"
                )
        scope = channel_scope(user_channel)
        if scope not in self.scopes(platform):
            return f"{self.name} does not apply to the {scope} scope on {platform}"
        return None


def channel_scope(user_channel: bool) -> str:
    return "user" if user_channel else "system"


@cache
def declaration_spec(declaration_type: str) -> DeclarationSpec | None:
    entry = _index()["declarations"].get(declaration_type)
    if entry is None:
        return None
    return DeclarationSpec(
        declaration_type, entry["class"], entry["os"], _root(declaration_type, entry)
    )


def declaration_types() -> list[str]:
    return sorted(_index()["declarations"])


@cache
def protocol_spec(name: str) -> KeySpec:
    """TokensResponse, DeclarationItemsResponse or StatusReport, as a dictionary spec."""
    return _root(name, _index()["protocol"][name])


@cache
def status_spec(item: str) -> KeySpec | None:
    """The value spec of one status item (the item's own key inside its document)."""
    entry = _index()["status"].get(item)
    if entry is None:
        return None
    return _root(item, entry).by_name.get(item)


@cache
def status_item_names() -> frozenset[str]:
    return frozenset(_index()["status"])


def status_item_supported(item: str, platform: Platform | None) -> bool:
    entry = _index()["status"].get(item)
    if entry is None or platform is None:
        return entry is not None
    return PlatformSupport.from_raw(entry["os"].get(platform)).available
