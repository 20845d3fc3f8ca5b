"""What the server knows about a device's apps, from the three places it hears about them:

- ``installed_apps``: the InstalledApplicationList, every app on the device (managed or not),
  with its version;
- ``managed_apps``: the ManagedApplicationList, the apps MDM manages and their Status (no
  version);
- ``ddm_apps``: the ``app.managed.list`` DDM status item, the apps declarations manage, with
  their state and version.

One bundle id's sightings are merged into one :class:`AppSeen`: present when any source lists
it as installed, missing when a source says it was removed (Status ``ManagedButUninstalled``,
state ``managed-but-uninstalled``) and none says otherwise; managed when MDM or DDM manages it.
Bundle ids compare case-insensitively.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MANAGED_INSTALLED = frozenset({"Managed"})
MANAGED_GONE = frozenset({"ManagedButUninstalled"})
DDM_INSTALLED = frozenset({"managed"})
DDM_GONE = frozenset({"managed-but-uninstalled"})


@dataclass(frozen=True, slots=True)
class AppSeen:
    bundle_id: str
    present: bool
    managed: bool
    version: str | None


def app_sightings(facts: Mapping[str, Any]) -> dict[str, AppSeen] | None:
    """Lower-cased bundle id -> what is known; None when no app list was reported yet."""
    sources = [facts.get(k) for k in ("installed_apps", "managed_apps", "ddm_apps")]
    if all(s is None for s in sources):
        return None
    installed, managed, declared = (s if isinstance(s, list) else [] for s in sources)
    present: dict[str, bool] = {}
    gone: set[str] = set()
    is_managed: set[str] = set()
    versions: dict[str, str] = {}
    names: dict[str, str] = {}

    def note(entry: Any) -> str | None:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
            return None
        key = entry["id"].lower()
        names.setdefault(key, entry["id"])
        version = entry.get("version")
        if isinstance(version, str) and version:
            versions.setdefault(key, version)
        return key

    for entry in declared:  # the newest word on the apps DDM manages
        if (key := note(entry)) is not None:
            is_managed.add(key)
            state = entry.get("state")
            if state in DDM_INSTALLED:
                present[key] = True
            elif state in DDM_GONE:
                gone.add(key)
    for entry in managed:
        if (key := note(entry)) is not None:
            status = entry.get("status")
            if status in MANAGED_INSTALLED:
                present[key] = True
                is_managed.add(key)
            elif status in MANAGED_GONE:
                gone.add(key)
                is_managed.add(key)
    for entry in installed:
        if (key := note(entry)) is not None:
            present[key] = True
    return {
        key: AppSeen(
            bundle_id=names[key],
            present=present.get(key, False) and key not in gone,
            managed=key in is_managed,
            version=versions.get(key),
        )
        for key in names
    }
