"""How a simulated device installs, reports and removes apps.

Each device keeps the apps it has. ``InstallApplication`` by ``iTunesStoreID`` installs from
the (simulated) App Store, whose catalog maps Adam IDs to apps (:data:`APP_STORE`, extended
with :meth:`DeviceApps.publish`); by ``ManifestURL`` (an in-house app) the device downloads
the manifest and then the ``.ipa`` the manifest names, from the server's device-authenticated
URLs, signing each GET with its identity as a real device does, and checks the file against
the manifest's chunk hashes and the ``.ipa``'s Info.plist against the manifest's bundle id.
``InstallEnterpriseApplication`` (macOS) does the same with a ``.pkg`` and its SHA-256
chunks, from an inline ``Manifest`` or a ``ManifestURL``. A managed install is reported
``Installing`` until the device's next poll session, then ``Managed``.

``ManagedApplicationList`` and ``InstalledApplicationList`` answer from this state with the
keys Apple's schema lists (``mdm/commands/application.*.yaml``). Two things can be arranged
for tests and demos: an install that fails for a bundle id (:meth:`DeviceApps.fail_install`,
answered ``Error`` with an ErrorChain shaped like a device's), and a user who deletes an app
by hand (:meth:`DeviceApps.remove_by_user`): a managed app becomes ``ManagedButUninstalled``,
as Apple documents, and leaves the installed list.

Download URLs name the server's public host; like the enrollment's SCEP step, the simulator
dials its own base URL with the URL's path, so an app hosted elsewhere (a CDN) is not found
and its install fails as a device's would.
"""

from __future__ import annotations

import hashlib
import io
import plistlib
import threading
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mdmserver.simulator.catalog import DeviceSpec
from mdmserver.simulator.payloads import preinstalled

COMMANDS = frozenset(
    {
        "InstallApplication",
        "InstallEnterpriseApplication",
        "RemoveApplication",
        "ManagedApplicationList",
        "InstalledApplicationList",
    }
)
MANAGED, INSTALLING, REMOVED_BY_USER = "Managed", "Installing", "ManagedButUninstalled"

# (domain, code, description) as devices put them in an ErrorChain; {app} is the app's name.
INSTALL_FAILED = ("MCMDMErrorDomain", 12064, "The app “{app}” could not be installed.")
APP_NOT_FOUND = ("MCMDMErrorDomain", 12037, "The app with iTunes Store ID {app} was not found.")
DOWNLOAD_FAILED = ("MCMDMErrorDomain", 12047, "Could not download the manifest for “{app}”.")
HASH_MISMATCH = ("MDMClientError", 72, "The package “{app}” does not match its manifest.")
NOT_MANAGED = ("MCMDMErrorDomain", 12022, "The app “{app}” is not managed.")
BAD_COMMAND = ("MDMClientError", 97, "The command is missing a required key: {app}.")


@dataclass(frozen=True, slots=True)
class StoreApp:
    """One app of the simulated App Store."""

    bundle_id: str
    name: str
    version: str
    external_version: int  # ExternalVersionIdentifier, as the store reports it


# Adam IDs of real App Store apps (Apple's own), and a few the tests use.
APP_STORE: dict[int, StoreApp] = {
    361309726: StoreApp("com.apple.Pages", "Pages", "14.0", 866424431),
    361285480: StoreApp("com.apple.Keynote", "Keynote", "14.0", 866424420),
    361304891: StoreApp("com.apple.Numbers", "Numbers", "14.0", 866424432),
    408709785: StoreApp("com.example.field", "Field Notes", "3.2", 860000001),
}


@dataclass
class App:
    """An app on the device."""

    bundle_id: str
    name: str
    version: str
    source: str  # "app_store", "in_house" or "package"
    managed: bool
    status: str = MANAGED  # ManagedApplicationList Status, for managed apps
    flags: int = 0  # ManagementFlags
    size: int = 0
    external_version: int | None = None

    @property
    def present(self) -> bool:
        return self.status != REMOVED_BY_USER


@dataclass
class Failure:
    """An install that fails for one bundle id: ``times`` more answers (None: always)."""

    chain: list[dict[str, Any]]
    times: int | None = None


@dataclass
class AppReply:
    status: str
    keys: dict[str, Any] = field(default_factory=dict)


# GET a path with the device's identity; returns (HTTP status, body).
Fetch = Callable[[str], tuple[int, bytes]]


class AppError(Exception):
    def __init__(self, kind: tuple[str, int, str], app: str) -> None:
        self.chain = error_chain(kind, app)
        super().__init__(self.chain[0]["LocalizedDescription"])


def error_chain(kind: tuple[str, int, str], app: str) -> list[dict[str, Any]]:
    domain, code, text = kind
    message = text.format(app=app)
    return [
        {
            "ErrorCode": code,
            "ErrorDomain": domain,
            "LocalizedDescription": message,
            "USEnglishDescription": message,
        }
    ]


class DeviceApps:
    """One device's apps, and the commands that change or report them."""

    def __init__(self, spec: DeviceSpec, store: dict[int, StoreApp] | None = None) -> None:
        self.spec = spec
        # Shared, not copied: a fleet's devices see the same store.
        self.store: dict[int, StoreApp] = store if store is not None else dict(APP_STORE)
        self.apps: dict[str, App] = {
            bundle_id: App(bundle_id, name, version, "app_store", False, size=size)
            for bundle_id, name, version, size in preinstalled(spec)
        }  # the user's own apps: unmanaged, never in the ManagedApplicationList
        self.failures: dict[str, Failure] = {}
        self.removals: set[str] = set()  # deleted by the user once installed (see tick)
        self.downloads: list[str] = []  # paths fetched, in order (what a test checks)
        self._lock = threading.Lock()  # tests arrange failures while sessions run

    # What a test or demo arranges -----------------------------------------------------------

    def publish(self, adam_id: int | str, app: StoreApp) -> None:
        self.store[int(adam_id)] = app

    def fail_install(
        self,
        bundle_id: str,
        chain: list[dict[str, Any]] | None = None,
        *,
        times: int | None = None,
    ) -> None:
        """Answer installs of ``bundle_id`` with ``Error`` and this ErrorChain (a device's
        usual one when omitted), ``times`` times or until :meth:`heal`."""
        with self._lock:
            self.failures[bundle_id] = Failure(
                chain or error_chain(INSTALL_FAILED, bundle_id), times
            )

    def heal(self, bundle_id: str) -> None:
        with self._lock:
            self.failures.pop(bundle_id, None)

    def remove_by_user(self, bundle_id: str) -> bool:
        """The user deletes the app from the home screen / Applications; False if absent."""
        with self._lock:
            app = self.apps.get(bundle_id)
            if app is None or not app.present:
                return False
            if app.managed:
                app.status = REMOVED_BY_USER
            else:
                del self.apps[bundle_id]
            return True

    def remove_when_installed(self, bundle_id: str) -> None:
        """The user deletes the app by hand once, the first session after it is installed."""
        with self._lock:
            self.removals.add(bundle_id)

    def pending_removals(self) -> set[str]:
        """The bundle ids the user is still to delete (the DDM path reads them too)."""
        with self._lock:
            return set(self.removals)

    def removal_done(self, bundle_id: str) -> None:
        with self._lock:
            self.removals.discard(bundle_id)

    def installed(self) -> dict[str, App]:
        """The apps present on the device now, by bundle id."""
        with self._lock:
            return {b: a for b, a in self.apps.items() if a.present}

    # Time passing -----------------------------------------------------------------------------

    def tick(self) -> None:
        """A poll session begins: installs started earlier have finished, and an app the user
        is to delete (:meth:`remove_when_installed`) and that was installed is deleted."""
        with self._lock:
            for app in self.apps.values():
                if app.status == MANAGED and app.bundle_id in self.removals:
                    self.removals.discard(app.bundle_id)
                    app.status = REMOVED_BY_USER
                elif app.status == INSTALLING:
                    app.status = MANAGED

    # Commands ---------------------------------------------------------------------------------

    def answer(self, command: Mapping[str, Any], fetch: Fetch) -> AppReply:
        request_type = command.get("RequestType")
        try:
            if request_type == "InstallApplication":
                return self._install_application(command, fetch)
            if request_type == "InstallEnterpriseApplication":
                return self._install_enterprise(command, fetch)
            if request_type == "RemoveApplication":
                return self._remove(command)
            if request_type == "ManagedApplicationList":
                return AppReply("Acknowledged", {"ManagedApplicationList": self._managed(command)})
            if request_type == "InstalledApplicationList":
                return AppReply(
                    "Acknowledged", {"InstalledApplicationList": self._installed_list(command)}
                )
        except AppError as exc:
            return AppReply("Error", {"ErrorChain": exc.chain})
        raise ValueError(f"not an app command: {request_type!r}")

    def _install_application(self, command: Mapping[str, Any], fetch: Fetch) -> AppReply:
        flags = _int(command.get("ManagementFlags"))
        store_id = command.get("iTunesStoreID")
        if isinstance(store_id, int) and not isinstance(store_id, bool):
            found = self.store.get(store_id)
            if found is None:
                raise AppError(APP_NOT_FOUND, str(store_id))
            self._check_failure(found.bundle_id)
            app = App(found.bundle_id, found.name, found.version, "app_store", True,
                      INSTALLING, flags, 50_000_000, found.external_version)  # fmt: skip
            return self._installed(app)
        url = command.get("ManifestURL")
        if not isinstance(url, str):
            raise AppError(BAD_COMMAND, "iTunesStoreID or ManifestURL")
        manifest = self._manifest(url, fetch)
        bundle_id, version, title = _metadata(manifest, url)
        self._check_failure(bundle_id)
        data = self._package(manifest, fetch, title)
        if self.spec.platform == "iOS":
            _check_ipa(data, bundle_id, title)
        app = App(bundle_id, title, version, "in_house", True, INSTALLING, flags, len(data))
        return self._installed(app)

    def _install_enterprise(self, command: Mapping[str, Any], fetch: Fetch) -> AppReply:
        manifest = command.get("Manifest")
        if not isinstance(manifest, Mapping):
            url = command.get("ManifestURL")
            if not isinstance(url, str):
                raise AppError(BAD_COMMAND, "Manifest or ManifestURL")
            manifest = self._manifest(url, fetch)
        bundle_id, version, title = _metadata(manifest, "the package")
        self._check_failure(bundle_id)
        data = self._package(manifest, fetch, title)
        managed = command.get("InstallAsManaged") is True
        app = App(bundle_id, title, version, "package", managed,
                  INSTALLING if managed else MANAGED, _int(command.get("ManagementFlags")),
                  len(data))  # fmt: skip
        with self._lock:
            self.apps[bundle_id] = app
        return AppReply("Acknowledged")

    def _installed(self, app: App) -> AppReply:
        with self._lock:
            known = self.apps.get(app.bundle_id)
            if known is not None and known.present and known.status == MANAGED:
                app.status = MANAGED  # already there: the command only (re)takes management
            self.apps[app.bundle_id] = app
        return AppReply("Acknowledged", {"Identifier": app.bundle_id, "State": app.status})

    def install_failure(self, bundle_id: str) -> list[dict[str, Any]] | None:
        """One install attempt of ``bundle_id`` outside a command (an app.managed declaration
        on the DDM path): the ErrorChain of an arranged failure (one of its ``times`` used),
        else None. The same knob as the command path, so ``--fail-install`` covers both."""
        try:
            self._check_failure(bundle_id)
        except AppError as error:
            return error.chain
        return None

    def _check_failure(self, bundle_id: str) -> None:
        with self._lock:
            failure = self.failures.get(bundle_id)
            if failure is None:
                return
            if failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    del self.failures[bundle_id]
            chain = [dict(link) for link in failure.chain]
        error = AppError(INSTALL_FAILED, bundle_id)
        error.chain = chain
        raise error

    def _remove(self, command: Mapping[str, Any]) -> AppReply:
        bundle_id = command.get("Identifier")
        if not isinstance(bundle_id, str):
            raise AppError(BAD_COMMAND, "Identifier")
        with self._lock:
            app = self.apps.get(bundle_id)
            if app is None or not app.managed:
                raise AppError(NOT_MANAGED, bundle_id)
            del self.apps[bundle_id]
        return AppReply("Acknowledged")

    def _managed(self, command: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        wanted = _identifiers(command)
        out: dict[str, dict[str, Any]] = {}
        with self._lock:
            for bundle_id, app in sorted(self.apps.items()):
                if not app.managed or (wanted is not None and bundle_id not in wanted):
                    continue
                entry: dict[str, Any] = {
                    "Status": app.status,
                    "ManagementFlags": app.flags,
                    "HasConfiguration": False,
                    "HasFeedback": False,
                }
                if self.spec.platform == "iOS":
                    entry["IsValidated"] = app.status == MANAGED
                if app.external_version is not None:
                    entry["ExternalVersionIdentifier"] = app.external_version
                out[bundle_id] = entry
        return out

    def _installed_list(self, command: Mapping[str, Any]) -> list[dict[str, Any]]:
        wanted = _identifiers(command)
        managed_only = command.get("ManagedAppsOnly") is True
        ios = self.spec.platform == "iOS"
        out = []
        with self._lock:
            for bundle_id, app in sorted(self.apps.items()):
                if not app.present or (managed_only and not app.managed):
                    continue
                if wanted is not None and bundle_id not in wanted:
                    continue
                entry: dict[str, Any] = {
                    "Identifier": bundle_id,
                    "Name": app.name,
                    "ShortVersion": app.version,
                    "Version": app.version,
                    "BundleSize": app.size,
                    "Installing": app.status == INSTALLING,
                    "AppStoreVendable": app.source == "app_store",
                    "DeviceBasedVPP": app.source == "app_store",
                    "BetaApp": False,
                    "AdHocCodeSigned": False,
                    "HasUpdateAvailable": False,
                }
                if ios:
                    entry["IsValidated"] = True
                    entry["DynamicSize"] = 1_000_000
                if app.external_version is not None:
                    entry["ExternalVersionIdentifier"] = app.external_version
                out.append(entry)
        return out

    # Downloads --------------------------------------------------------------------------------

    def _get(self, url: str, fetch: Fetch, title: str) -> bytes:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.downloads.append(parts.path)
        status, body = fetch(path)
        if status != 200:
            raise AppError(DOWNLOAD_FAILED, title)
        return body

    def _manifest(self, url: str, fetch: Fetch) -> Mapping[str, Any]:
        body = self._get(url, fetch, url)
        try:
            manifest = plistlib.loads(body)
        except Exception:
            raise AppError(DOWNLOAD_FAILED, url) from None
        if not isinstance(manifest, Mapping):
            raise AppError(DOWNLOAD_FAILED, url)
        return manifest

    def _package(self, manifest: Mapping[str, Any], fetch: Fetch, title: str) -> bytes:
        asset = _asset(manifest, title)
        data = self._get(str(asset["url"]), fetch, title)
        if not _hashes_match(asset, data):
            raise AppError(HASH_MISMATCH, title)
        return data


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _identifiers(command: Mapping[str, Any]) -> set[str] | None:
    found = command.get("Identifiers")
    if not isinstance(found, list) or not found:
        return None
    return {i for i in found if isinstance(i, str)}


def _item(manifest: Mapping[str, Any], title: str) -> Mapping[str, Any]:
    items = manifest.get("items")
    if not isinstance(items, list) or not items or not isinstance(items[0], Mapping):
        raise AppError(DOWNLOAD_FAILED, title)
    return items[0]


def _metadata(manifest: Mapping[str, Any], title: str) -> tuple[str, str, str]:
    metadata = _item(manifest, title).get("metadata")
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("bundle-identifier"), str):
        raise AppError(DOWNLOAD_FAILED, title)
    bundle_id = metadata["bundle-identifier"]
    return (
        bundle_id,
        str(metadata.get("bundle-version") or "1.0"),
        str(metadata.get("title") or bundle_id),
    )


def _asset(manifest: Mapping[str, Any], title: str) -> Mapping[str, Any]:
    assets = _item(manifest, title).get("assets")
    for asset in assets if isinstance(assets, list) else []:
        if (
            isinstance(asset, Mapping)
            and asset.get("kind") == "software-package"
            and isinstance(asset.get("url"), str)
        ):
            return asset
    raise AppError(DOWNLOAD_FAILED, title)


def _hashes_match(asset: Mapping[str, Any], data: bytes) -> bool:
    """SHA-256 chunks when the manifest has them (macOS prefers them), else MD5 chunks; a
    manifest with neither is refused, as a device refuses an unverifiable package."""
    for family, new in (("sha256", hashlib.sha256), ("md5", hashlib.md5)):
        digests, size = asset.get(f"{family}s"), asset.get(f"{family}-size")
        if not isinstance(digests, list) or not isinstance(size, int) or size <= 0:
            continue
        chunks = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
        return [new(c).hexdigest() for c in chunks] == [str(d).lower() for d in digests]
    return False


def _check_ipa(data: bytes, bundle_id: str, title: str) -> None:
    """The app inside must be the one the manifest names."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if n.count("/") == 2
                     and n.startswith("Payload/") and n.endswith(".app/Info.plist")]  # fmt: skip
            info = plistlib.loads(archive.read(names[0])) if len(names) == 1 else None
    except (zipfile.BadZipFile, plistlib.InvalidFileException, ValueError):
        info = None
    if not isinstance(info, dict) or info.get("CFBundleIdentifier") != bundle_id:
        raise AppError(HASH_MISMATCH, title)
