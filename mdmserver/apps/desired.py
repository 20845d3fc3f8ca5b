"""Desired state for apps, as a pure plan: given what should be on a device and what its
``ManagedApplicationList`` says, which apps to install and which to remove.

Only apps from this server's catalog are ever removed (an app the device manages for someone
else is left alone), and only ``required`` apps are installed unasked; ``available`` ones are
allowed (their files can be fetched) but not pushed. The commands come from
:func:`install_command` and are checked against Apple's schema before they are queued.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# ManagedApplicationList statuses (Apple's rangelist), by what they mean for reconciliation.
INSTALLED = frozenset({"Managed"})
IN_PROGRESS = frozenset({
    "Queued", "NeedsRedemption", "Redeeming", "Prompting", "PromptingForLogin",
    "ValidatingPurchase", "PromptingForUpdate", "PromptingForUpdateLogin",
    "PromptingForManagement", "ValidatingUpdate", "Updating", "Installing",
})  # fmt: skip
MANAGED = INSTALLED | IN_PROGRESS | {"ManagedButUninstalled"}
MANAGEMENT_FLAG_REMOVE_WITH_MDM = 1  # ManagementFlags bit: remove the app when MDM goes


@dataclass(frozen=True, slots=True)
class WantedApp:
    app_id: str
    bundle_id: str
    kind: str
    licensed: bool  # App Store apps: a license is assigned to this device's serial


@dataclass
class AppPlan:
    install: list[str] = field(default_factory=list)  # app ids
    remove: list[str] = field(default_factory=list)  # bundle ids
    state: dict[str, str] = field(default_factory=dict)  # app id -> status


def plan(
    required: Mapping[str, WantedApp],
    assigned_bundle_ids: set[str],
    catalog_bundle_ids: set[str],
    reported: Mapping[str, str],
    in_flight: set[str],
    delivered: frozenset[str] | set[str] = frozenset(),
) -> AppPlan:
    """``required``: app id -> app; ``reported``: bundle id -> Status from the device;
    ``in_flight``: app ids with an install command still queued or unanswered;
    ``delivered``: macOS packages the device accepted (packages are not managed apps, so the
    ManagedApplicationList never lists them: an accepted one is not sent again)."""
    out = AppPlan()
    for app_id, app in required.items():
        status = reported.get(app.bundle_id)
        if status in INSTALLED:
            out.state[app_id] = "installed"
        elif status in IN_PROGRESS or app_id in in_flight or app_id in delivered:
            out.state[app_id] = "installing"
        elif app.kind == "app_store" and not app.licensed:
            out.state[app_id] = "needs_license"
        else:
            out.install.append(app_id)
            out.state[app_id] = "pending"
    for bundle_id, status in sorted(reported.items()):
        if (
            status in MANAGED
            and bundle_id in catalog_bundle_ids
            and bundle_id not in assigned_bundle_ids
        ):
            out.remove.append(bundle_id)
    return out


def read_managed_list(raw: Any) -> dict[str, str] | None:
    """bundle id -> Status from a ManagedApplicationList answer (defensively: devices vary);
    None when the answer has no list at all, so nothing is decided from it."""
    found = raw.get("ManagedApplicationList") if isinstance(raw, Mapping) else None
    if not isinstance(found, Mapping):
        return None
    return {
        str(bundle_id): str(entry.get("Status"))
        for bundle_id, entry in found.items()
        if isinstance(entry, Mapping) and isinstance(entry.get("Status"), str)
    }


def install_command(
    kind: str,
    *,
    adam_id: str | None,
    manifest_url: str | None,
    manifest: Mapping[str, Any] | None,
    platform: str | None,
) -> tuple[str, dict[str, Any]]:
    """The RequestType and payload that install one catalog app."""
    if kind == "app_store":
        assert adam_id is not None
        payload: dict[str, Any] = {
            "iTunesStoreID": int(adam_id),
            "ManagementFlags": MANAGEMENT_FLAG_REMOVE_WITH_MDM,
        }
        if platform == "iOS":  # iPadOS too: the schema names it iOS
            payload["Options"] = {"PurchaseMethod": 1}  # an Apps and Books license (iOS key)
        return "InstallApplication", payload
    if kind == "ios_inhouse":
        assert manifest_url is not None
        return "InstallApplication", {
            "ManifestURL": manifest_url,
            "ManagementFlags": MANAGEMENT_FLAG_REMOVE_WITH_MDM,
        }
    if manifest is not None:
        return "InstallEnterpriseApplication", {"Manifest": dict(manifest)}
    assert manifest_url is not None
    return "InstallEnterpriseApplication", {"ManifestURL": manifest_url}
