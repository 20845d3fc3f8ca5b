"""How a simulated device speaks Declarative Device Management.

A ``DeclarativeManagement`` command turns DDM on (its Data carries the server's SyncTokens);
the device then syncs as Apple's do: ``tokens``, and when the DeclarationsToken is new,
``declaration-items`` and each declaration whose ServerToken it does not have. It applies the
configurations it supports (passcode settings, status subscriptions, OS-update enforcement,
the test configuration) when an activation names them, and reports status: a full report
after a sync, then incremental ones as its state changes. Two changes happen over time, one
step per poll session: a passcode that did not meet the policy is fixed by its "user", and an
enforced OS update goes downloading -> installing -> done (the OS version changes).

An activated ``app.managed`` configuration installs its App Store app (the bundle id and
version the simulated store gives its AppStoreID, :data:`STORE`), reported in the
``app.managed.list`` status item; an app whose configuration goes away is reported removed.
An install can fail (the device's :attr:`DDMState.install_failure`, wired to the same arranged
failures as the command path): the entry is then ``failed`` with an ``Error.InstallFailed``
reason (its ``Timestamp`` detail, as Apple's status item documents), and the device tries again
each session until it installs (``managed``). A user cannot delete a ``Required`` app (Apple's
app.managed: "The user can't remove the app"): the attempt leaves it ``managed``. An
``Optional`` app the user deletes is ``managed-but-uninstalled`` ("the app remains managed if
the system installs it again") and is not installed again by the device itself.
"""

from __future__ import annotations

import json
import plistlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from mdmserver.catalog.schema import Platform, parse_version
from mdmserver.ddm.schema import declaration_spec, status_item_supported
from mdmserver.simulator.catalog import DeviceSpec
from mdmserver.simulator.stats import Stats
from mdmserver.simulator.transport import Transport
from mdmserver.testing.device import VirtualDevice

APPLIED = frozenset(
    {
        "com.apple.configuration.passcode.settings",
        "com.apple.configuration.management.status-subscriptions",
        "com.apple.configuration.softwareupdate.enforcement.specific",
        "com.apple.configuration.management.test",
        "com.apple.configuration.app.managed",
    }
)
APP_MANAGED = "com.apple.configuration.app.managed"
APP_LIST = "app.managed.list"
# The simulated App Store: AppStoreID -> (bundle id, short version). Others get a made-up id.
STORE: dict[str, tuple[str, str]] = {
    "408709785": ("com.apple.Pages", "14.2"),
    "361309726": ("com.apple.Pages", "14.2"),
    "361285480": ("com.apple.Keynote", "14.2"),
    "361304891": ("com.apple.Numbers", "14.2"),
}
SECTIONS = {"Activations": "activation", "Configurations": "configuration",
            "Assets": "asset", "Management": "management"}  # fmt: skip
UPDATE_STEPS = ("downloading", "installing")


@dataclass
class Declaration:
    cls: str
    type: str
    server_token: str
    payload: dict[str, Any]


@dataclass
class DDMState:
    """One device's DDM side: on or off, what it holds, and the state it reports."""

    spec: DeviceSpec
    enabled: bool = False
    token: str | None = None
    declarations: dict[str, Declaration] = field(default_factory=dict)
    os_version: str = ""
    passcode_compliant: bool = False
    update_step: int = -1  # index in UPDATE_STEPS while an update is under way
    subscribed: set[str] = field(default_factory=set)
    reported: dict[str, Any] = field(default_factory=dict)
    # One install attempt of a bundle id: an arranged failure's ErrorChain, or None.
    install_failure: Callable[[str], list[dict[str, Any]] | None] = lambda _bundle_id: None
    installed: set[str] = field(default_factory=set)  # app.managed identifiers installed
    failed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # id -> reasons
    user_removed: set[str] = field(default_factory=set)  # installed, deleted by the user

    def __post_init__(self) -> None:
        self.os_version = self.os_version or self.spec.os_version

    # The server's requests -------------------------------------------------------------------

    def _checkin(
        self, identity: VirtualDevice, transport: Transport, endpoint: str, data: Any = None
    ) -> bytes:
        message: dict[str, Any] = {"MessageType": "DeclarativeManagement", "UDID": identity.udid,
                                   "Endpoint": endpoint}  # fmt: skip
        if data is not None:
            message["Data"] = json.dumps(data).encode()
        body = plistlib.dumps(message)
        headers = {"Content-Type": "application/x-apple-aspen-mdm-checkin",
                   "Mdm-Signature": identity.sign(body)}  # fmt: skip
        return transport.put(f"ddm_{endpoint.split('/')[0]}", "/mdm/checkin", body, headers)

    def sync(self, identity: VirtualDevice, transport: Transport, stats: Stats) -> bool:
        """tokens -> declaration-items -> each new declaration; True when something changed."""
        self.enabled = True
        tokens = json.loads(self._checkin(identity, transport, "tokens"))["SyncTokens"]
        if tokens["DeclarationsToken"] == self.token:
            return False
        items = json.loads(self._checkin(identity, transport, "declaration-items"))
        fresh: dict[str, Declaration] = {}
        for section, entries in items["Declarations"].items():
            cls = SECTIONS[section]
            for entry in entries:
                identifier, token = entry["Identifier"], entry["ServerToken"]
                held = self.declarations.get(identifier)
                if held is None or held.server_token != token:
                    path = f"declaration/{cls}/{identifier}"
                    body = json.loads(self._checkin(identity, transport, path))
                    held = Declaration(cls, body["Type"], body["ServerToken"], body["Payload"])
                    stats.event("ddm_declarations_fetched")
                fresh[identifier] = held
        self.declarations = fresh
        self.token = items["DeclarationsToken"]
        self._apply()
        stats.event("ddm_synced")
        self.report(identity, transport, full=True)
        return True

    def _active(self) -> dict[str, Declaration]:
        """Configurations an activation names and this device supports."""
        named = {
            name
            for d in self.declarations.values()
            if d.cls == "activation"
            for name in d.payload.get("StandardConfigurations", [])
        }
        return {
            i: d
            for i, d in self.declarations.items()
            if i in named and d.cls == "configuration" and d.type in APPLIED
        }

    def _apply(self) -> None:
        self.subscribed = {
            item["Name"]
            for d in self._active().values()
            if d.type.endswith("status-subscriptions")
            for item in d.payload.get("StatusItems", [])
        }
        if self._update_pending() and self.update_step < 0:
            self.update_step = 0  # an enforced update starts downloading at once
        self._install_apps()

    def _app_declarations(self) -> dict[str, Declaration]:
        return {i: d for i, d in self._active().items() if d.type == APP_MANAGED}

    @staticmethod
    def _store_app(d: Declaration) -> tuple[str, str]:
        store_id = str(d.payload.get("AppStoreID") or d.payload.get("BundleID") or "")
        return STORE.get(store_id, (f"sim.app.{store_id}", "1.0"))

    def _install_apps(self) -> None:
        """Try each active app.managed app not installed yet (a user-deleted Required app
        too: the system installs it again); forget the apps whose declaration went away."""
        active = self._app_declarations()
        self.installed &= set(active)
        self.user_removed &= set(active)
        self.failed = {i: r for i, r in self.failed.items() if i in active}
        for identifier, d in active.items():
            optional = d.payload.get("InstallBehavior", {}).get("Install") == "Optional"
            if identifier in self.installed and identifier not in self.user_removed:
                continue
            if identifier in self.user_removed:
                continue  # an Optional app the user deleted: only the user brings it back
            if optional and identifier not in self.installed and identifier not in self.failed:
                continue  # Optional: the user has to start it (state "optional")
            bundle_id, _ = self._store_app(d)
            chain = self.install_failure(bundle_id)
            if chain is None:
                self.installed.add(identifier)
                self.user_removed.discard(identifier)
                self.failed.pop(identifier, None)
                continue
            text = str(chain[0].get("LocalizedDescription", "")) if chain else ""
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.failed[identifier] = [{"code": "Error.InstallFailed",
                                        "description": text or "The app install failed.",
                                        "details": {"Timestamp": stamp}}]  # fmt: skip

    def remove_app_by_user(self, bundle_id: str) -> bool:
        """The user tries to delete an app a declaration installed (a Required one stays);
        False if none is installed."""
        for identifier, d in self._app_declarations().items():
            if identifier in self.installed and self._store_app(d)[0] == bundle_id:
                if d.payload.get("InstallBehavior", {}).get("Install") == "Optional":
                    self.user_removed.add(identifier)  # Required: the system refuses it
                return True
        return False

    def target_version(self) -> str | None:
        targets = [
            d.payload["TargetOSVersion"]
            for d in self._active().values()
            if d.type.endswith("enforcement.specific")
        ]
        return max(targets, key=parse_version, default=None)

    # Status ----------------------------------------------------------------------------------

    def _update_pending(self) -> bool:
        target = self.target_version()
        return target is not None and parse_version(target) > parse_version(self.os_version)

    def status_items(self) -> dict[str, Any]:
        """Every status item this device can report, by name."""
        install = "none"
        if self._update_pending() and self.update_step >= 0:
            install = UPDATE_STEPS[self.update_step]
        items: dict[str, Any] = {
            "passcode.is-present": True,
            "passcode.is-compliant": self.passcode_compliant,
            "device.operating-system.version": self.os_version,
            "device.operating-system.build-version": self.spec.build_version,
            "device.operating-system.family": self.spec.platform,
            "device.model.identifier": self.spec.product_name,
            "device.model.family": self.spec.model,
            "softwareupdate.install-state": install,
            "management.declarations": self._declaration_status(),
        }
        app_spec = declaration_spec(APP_MANAGED)  # app.managed.list: where app.managed exists
        if (
            app_spec is not None
            and app_spec.unsupported(self.spec.platform, self.os_version, user_channel=False)
            is None
        ):
            items[APP_LIST] = self._apps()
        if self._update_pending():
            items["softwareupdate.pending-version"] = {
                "os-version": self.target_version(),
                "build-version": "SIM" + str(self.target_version()),
            }
        if self.spec.platform == "macOS":
            items["diskmanagement.filevault.enabled"] = True
        platform = cast(Platform, self.spec.platform)
        return {k: v for k, v in items.items() if status_item_supported(k, platform)}

    def _apps(self) -> list[dict[str, Any]]:
        """The active app.managed configurations' apps and their state."""
        out = []
        for identifier, d in sorted(self._app_declarations().items()):
            bundle_id, version = self._store_app(d)
            entry: dict[str, Any] = {"identifier": bundle_id, "declaration-identifier": identifier,
                                     "name": bundle_id.rsplit(".", 1)[-1]}  # fmt: skip
            if identifier in self.user_removed:
                entry["state"] = "managed-but-uninstalled"
            elif identifier in self.installed:
                entry.update({"short-version": version, "version": version, "state": "managed"})
            elif identifier in self.failed:
                entry.update({"state": "failed", "reasons": self.failed[identifier]})
            elif d.payload.get("InstallBehavior", {}).get("Install") == "Optional":
                entry["state"] = "optional"
            else:
                entry["state"] = "queued"
            out.append(entry)
        return out

    def _declaration_status(self) -> dict[str, list[dict[str, Any]]]:
        active = self._active()
        out: dict[str, list[dict[str, Any]]] = {s.lower(): [] for s in SECTIONS}
        for identifier, d in sorted(self.declarations.items()):
            supported = d.cls != "configuration" or d.type in APPLIED
            entry: dict[str, Any] = {
                "identifier": identifier,
                "server-token": d.server_token,
                "active": identifier in active or d.cls in ("activation", "management"),
                "valid": "valid" if supported else "invalid",
            }
            if not supported:
                entry["reasons"] = [{"code": "Error.ConfigurationNotSupported",
                                     "description": f"{d.type} is not simulated"}]  # fmt: skip
            out[f"{d.cls}s" if d.cls != "management" else "management"].append(entry)
        return out

    def _wanted(self, name: str) -> bool:
        return any(
            name == pattern or (pattern.endswith(".*") and name.startswith(pattern[:-1]))
            for pattern in self.subscribed
        )

    def report(self, identity: VirtualDevice, transport: Transport, *, full: bool) -> bool:
        """Send the subscribed items (all of them, or only what changed); True if sent."""
        items = {k: v for k, v in self.status_items().items() if self._wanted(k)}
        changed = items if full else {k: v for k, v in items.items() if self.reported.get(k) != v}
        if not changed:
            return False
        sent = dict(changed)
        if not full and APP_LIST in changed:  # a list item carries only what changed
            sent[APP_LIST] = _list_changes(self.reported.get(APP_LIST), changed[APP_LIST])
        nested: dict[str, Any] = {}
        for name, value in sent.items():
            head, _, tail = name.partition(".")
            node = nested.setdefault(head, {})
            parts = tail.split(".") if name not in ("management.declarations",) else [tail]
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
        report = {"StatusItems": nested, "Errors": [], "FullReport": full}
        self._checkin(identity, transport, "status", report)
        self.reported.update(changed)
        return True

    def tick(self, identity: VirtualDevice, transport: Transport, stats: Stats) -> None:
        """Time passes (one poll session): the passcode is fixed, an update makes progress."""
        if not self.enabled:
            return
        if not self.passcode_compliant:
            self.passcode_compliant = True
        elif self._update_pending():
            if self.update_step + 1 < len(UPDATE_STEPS):
                self.update_step += 1
            else:
                self.os_version = str(self.target_version())
                self.update_step = -1
                stats.event("ddm_os_updated")
        self._install_apps()  # a failed install is tried again, a deleted Required app back
        if self.report(identity, transport, full=False):
            stats.event("ddm_status_reports")


def _list_changes(before: Any, now: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An incremental report's list: new or changed entries, and ``_removed`` for the gone."""
    old = {e["identifier"]: e for e in before or [] if isinstance(e, dict)}
    new = {e["identifier"]: e for e in now}
    changes = [e for key, e in new.items() if old.get(key) != e]
    changes += [{"identifier": key, "_removed": True} for key in old if key not in new]
    return changes
