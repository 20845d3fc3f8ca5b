"""Reading a status report: the flat status items it carries, and what inventory learns.

Reports nest items by the dots of their names ({"passcode": {"is-compliant": true}} is
``passcode.is-compliant``). Items are found by walking down until the path names an item the
schema knows; unknown paths are kept at their leaves, so nothing a device says is lost. A
report is incremental unless ``FullReport``: list items (app.managed.list, ...) then carry
only changed entries, with ``_removed`` marking those gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mdmserver.ddm.schema import status_item_names

__all__ = [
    "DEFAULT_SUBSCRIPTIONS",
    "FACTS",
    "facts_from",
    "flatten",
    "merge_list",
]

# What the server subscribes every channel to: what compliance and inventory need.
DEFAULT_SUBSCRIPTIONS = (
    "passcode.is-compliant",
    "passcode.is-present",
    "diskmanagement.filevault.enabled",
    "device.operating-system.*",
    "device.model.*",
    "softwareupdate.*",
    "management.declarations",
    "app.managed.list",
    "security.certificate.list",
)

# Status item -> inventory fact (mdmserver.inventory.parse.FIELDS), for compliance.
FACTS = {
    "passcode.is-compliant": "passcode_compliant",
    "passcode.is-present": "passcode_present",
    "diskmanagement.filevault.enabled": "filevault",
    "device.operating-system.version": "os_version",
    "device.operating-system.build-version": "build_version",
    "device.model.identifier": "product_name",
    "device.model.marketing-name": "model_name",
    "device.identifier.serial-number": "serial_number",
}
MAX_DEPTH = 8
DDM_APPS = "app.managed.list"  # -> the ddm_apps fact: apps DDM manages, with state and version
MAX_APPS = 5000


def flatten(items: Mapping[str, Any]) -> dict[str, Any]:
    """{"passcode": {"is-compliant": true}} -> {"passcode.is-compliant": true}."""
    known = status_item_names()
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any, depth: int) -> None:
        if prefix in known or not isinstance(value, Mapping) or depth >= MAX_DEPTH or not value:
            out[prefix] = value
            return
        for name, child in value.items():
            walk(f"{prefix}.{name}", child, depth + 1)

    for name, value in items.items():
        walk(str(name), value, 1)
    return out


def merge_list(old: Any, new: list[Any]) -> list[Any]:
    """An incremental list item merged into what was known, entries keyed by identifier."""
    if not isinstance(old, list):
        old = []
    merged = {_key(entry): entry for entry in old if isinstance(entry, Mapping)}
    for entry in new:
        if not isinstance(entry, Mapping):
            continue
        if entry.get("_removed"):
            merged.pop(_key(entry), None)
        else:
            merged[_key(entry)] = entry
    return list(merged.values())


def _key(entry: Mapping[str, Any]) -> str:
    return str(entry.get("identifier", entry.get("declaration-identifier", repr(sorted(entry)))))


def facts_from(items: Mapping[str, Any]) -> dict[str, Any]:
    """The inventory facts a set of status items states (typed as inventory keeps them)."""
    facts: dict[str, Any] = {}
    for item, fact in FACTS.items():
        if item not in items:
            continue
        value = items[item]
        if fact in ("passcode_compliant", "passcode_present", "filevault"):
            if isinstance(value, bool):
                facts[fact] = value
        elif isinstance(value, str):
            facts[fact] = value
    if isinstance(items.get(DDM_APPS), list):
        facts["ddm_apps"] = ddm_apps(items[DDM_APPS])
    return facts


def ddm_apps(entries: list[Any]) -> list[dict[str, Any]]:
    """app.managed.list entries as inventory keeps apps: id, state, version (short version
    first, as InstalledApplicationList's ShortVersion), the declaration managing it."""
    out = []
    for entry in entries:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("identifier"), str):
            continue
        version = entry.get("short-version") or entry.get("version")
        out.append(
            {
                "id": entry["identifier"][:256],
                "state": str(entry.get("state"))[:64] if entry.get("state") else None,
                "version": str(version)[:64] if isinstance(version, str | int) else None,
                "declaration": str(entry.get("declaration-identifier"))[:255]
                if entry.get("declaration-identifier")
                else None,
            }
        )
    return sorted(out, key=lambda app: app["id"])[:MAX_APPS]
