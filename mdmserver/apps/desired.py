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


def read_installed_list(raw: Any) -> dict[str, str | None] | None:
    """bundle id -> version (ShortVersion, else Version) from an InstalledApplicationList
    answer: every app on the device, managed or not; None when the answer has no list."""
    found = raw.get("InstalledApplicationList") if isinstance(raw, Mapping) else None
    if not isinstance(found, list):
        return None
    out: dict[str, str | None] = {}
    for entry in found:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("Identifier"), str):
            continue
        version = entry.get("ShortVersion") or entry.get("Version")
        out[entry["Identifier"]] = str(version)[:64] if isinstance(version, str | int) else None
    return out


# app.managed.list "state" (Apple's rangelist) -> the per-device app status.
DDM_STATES = {
    "managed": "installed",
    "queued": "installing",
    "prompting-for-consent": "installing",
    "prompting-for-login": "installing",
    "prompting-for-management": "installing",
    "downloading": "installing",
    "installing": "installing",
    "managed-but-uninstalled": "pending",
    "optional": "pending",
    "failed": "failed",
}
LICENSE_NOT_FOUND = "Error.LicenseNotFound"


def ddm_app_state(entry: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """The status and the device's reasons for one app.managed.list entry."""
    reasons = entry.get("reasons")
    reasons = [r for r in reasons if isinstance(r, Mapping)] if isinstance(reasons, list) else []
    if any(r.get("code") == LICENSE_NOT_FOUND for r in reasons):
        return "needs_license", reasons
    status = DDM_STATES.get(str(entry.get("state")), "installing")
    if status != "failed" and any(str(r.get("code", "")).startswith("Error.") for r in reasons):
        status = "failed"
    return status, reasons


def default_flags(kind: str) -> int:
    """Apps: removed with MDM (1). Packages: none, as before flags could be set (a package's
    flags only matter with InstallAsManaged, which this server does not send)."""
    return 0 if kind == "macos_pkg" else MANAGEMENT_FLAG_REMOVE_WITH_MDM


def install_command(
    kind: str,
    *,
    adam_id: str | None,
    manifest_url: str | None,
    manifest: Mapping[str, Any] | None,
    platform: str | None,
    management_flags: int | None = None,
    configuration: Mapping[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The RequestType and payload that install one catalog app. ``management_flags``:
    None is the kind's default (:func:`default_flags`), 0 leaves the key out;
    ``configuration`` is the managed app configuration (Configuration). Keys a device's OS
    does not take are dropped later, per device (:func:`mdmserver.apps.options.device_keys`)."""
    flags = default_flags(kind) if management_flags is None else management_flags
    extra: dict[str, Any] = {}
    if flags:
        extra["ManagementFlags"] = flags
    if configuration is not None:
        extra["Configuration"] = dict(configuration)
    if kind == "app_store":
        assert adam_id is not None
        payload: dict[str, Any] = {"iTunesStoreID": int(adam_id), **extra}
        if platform == "iOS":  # iPadOS too: the schema names it iOS
            payload["Options"] = {"PurchaseMethod": 1}  # an Apps and Books license (iOS key)
        return "InstallApplication", payload
    if kind == "ios_inhouse":
        assert manifest_url is not None
        return "InstallApplication", {"ManifestURL": manifest_url, **extra}
    if manifest is not None:
        return "InstallEnterpriseApplication", {"Manifest": dict(manifest), **extra}
    assert manifest_url is not None
    return "InstallEnterpriseApplication", {"ManifestURL": manifest_url, **extra}
