"""The apps admin service: the catalog (create, upload, assign, delete) and Apps and Books
licenses (content token, asset sync, assign and revoke by serial, events followed to the end).

Every refusal is an ``AdminError`` raised before anything is written, so the API answers 4xx
and the database and the file store are unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from mdmserver.admin.errors import AdminError, BadRequest, Conflict, NotFound, Unprocessable
from mdmserver.apps import catalog, options
from mdmserver.apps.catalog import CatalogError
from mdmserver.apps.desired import default_flags
from mdmserver.apps.manifest import build_manifest, hash_stream
from mdmserver.apps.rollout import RolloutOutcome
from mdmserver.apps.vpp import (
    EXPIRY_WARNING_DAYS,
    ContentToken,
    EventStatus,
    TokenError,
    VppClient,
    VppError,
    parse_token,
)
from mdmserver.errors import Kind
from mdmserver.logs import get_logger
from mdmserver.push.instance import write_private
from mdmserver.storage.ports import AppPort
from mdmserver.storage.sql.app_store import (
    ALL,
    AppFiles,
    AppNameTaken,
    AppRow,
    Assignment,
    new_app_id,
)

log = get_logger("apps")

_SERIAL = re.compile(r"^[A-Za-z0-9]{1,64}$")
_FILE_SUFFIX = {"ios_inhouse": ".ipa", "macos_pkg": ".pkg"}
MAX_SERIALS = 1000
ASSIGNMENT_FIELDS = frozenset({"target", "behaviour", "management_flags", "configuration"})
Progress = Callable[[EventStatus], None]


@dataclass(frozen=True, slots=True)
class DeviceFile:
    """Where a device downloads an app's file and manifest from on this server."""

    manifest_path: str
    file_path: str


class Assigned(NamedTuple):
    """One assignment added or replaced, and what its roll-out did (None: not required)."""

    app: AppRow
    target: str
    behaviour: str
    rollout: RolloutOutcome | None


def device_paths(app_id: str) -> DeviceFile:
    return DeviceFile(f"/mdm/apps/{app_id}/manifest", f"/mdm/apps/{app_id}/file")


class AppsService:
    def __init__(
        self,
        store: AppPort,
        files: AppFiles,
        *,
        server_url: str,
        token_file: Path,
        vpp_url: str,
        client_factory: Callable[[ContentToken, str], VppClient] | None = None,
        on_assignments: Callable[[str], object] | None = None,
        roll_out: Callable[[str], RolloutOutcome | None] | None = None,
    ) -> None:
        self.store = store
        self.files = files
        self.server_url = server_url.rstrip("/")
        self.token_file = token_file
        self.vpp_url = vpp_url
        self.client_factory = client_factory or (lambda token, url: VppClient(token, url))
        # Called with the app id after its assignments change (the DDM declarations follow).
        self.on_assignments = on_assignments
        # Called after a required assignment is added or replaced, once the declarations
        # follow (the roll-out leaves out the devices that take them): every targeted device
        # gets the install at once (apps/rollout.py), not at its next ManagedApplicationList.
        self.roll_out = roll_out

    # Catalog ---------------------------------------------------------------------------------

    def create(self, body: Any) -> AppRow:
        """An App Store app, or an in-house app / package referenced by its manifest URL."""
        if not isinstance(body, dict):
            raise BadRequest("expected a JSON object")
        allowed = {"name", "kind", "bundle_id", "adam_id", "version", "manifest_url"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise BadRequest(f"unknown fields: {', '.join(unknown)}")
        try:
            name = catalog.check_name(body.get("name"))
            kind = catalog.check_kind(body.get("kind"))
            values: dict[str, Any] = {
                "name": name,
                "kind": kind,
                "bundle_id": catalog.check_bundle_id(body.get("bundle_id")),
                "version": catalog.check_version(body.get("version")),
            }
            if kind == "app_store":
                values["adam_id"] = catalog.check_adam_id(body.get("adam_id"))
                if "manifest_url" in body:
                    raise CatalogError("manifest_url: App Store apps come from the App Store")
            else:
                if "adam_id" in body:
                    raise CatalogError(f"adam_id: only App Store apps have one, not {kind}")
                if "manifest_url" not in body:
                    raise CatalogError(
                        "manifest_url: required to reference an app by URL (or upload the file "
                        "with POST /api/v1/apps/upload)"
                    )
                values["manifest_url"] = catalog.check_https_url(
                    "manifest_url", body["manifest_url"]
                )
        except CatalogError as exc:
            raise BadRequest(str(exc)) from None
        return self._insert(values)

    def upload(self, params: Mapping[str, str], data: bytes) -> AppRow:
        """An in-house .ipa or a distribution .pkg: checked, hashed, stored, manifest built."""
        allowed = {"name", "kind", "bundle_id", "version", "download_url"}
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise BadRequest(f"unknown parameters: {', '.join(unknown)}")
        if not data:
            raise BadRequest("the request body is empty; send the .ipa or .pkg file")
        try:
            name = catalog.check_name(params.get("name"))
            kind = catalog.check_kind(params.get("kind"))
            if kind not in catalog.FILE_KINDS:
                raise CatalogError("kind: only ios_inhouse and macos_pkg apps are uploaded")
            download_url = params.get("download_url")
            if download_url is not None:
                download_url = catalog.check_https_url("download_url", download_url)
            version = catalog.check_version(params.get("version"))
            bundle_id = params.get("bundle_id")
        except CatalogError as exc:
            raise BadRequest(str(exc)) from None
        try:
            facts = catalog.inspect_file(kind, data)
        except CatalogError as exc:
            raise Unprocessable(str(exc)) from None
        if facts.bundle_id and bundle_id and facts.bundle_id != bundle_id:
            raise Unprocessable(
                f"bundle_id: the file says {facts.bundle_id!r}, the request {bundle_id!r}"
            )
        try:
            bundle_id = catalog.check_bundle_id(bundle_id or facts.bundle_id)
        except CatalogError as exc:
            raise BadRequest(str(exc)) from None
        version = version or facts.version
        app_id = new_app_id()
        file_name = f"{name}{_FILE_SUFFIX[kind]}"
        hashes = hash_stream([data])
        url = download_url or self.server_url + device_paths(app_id).file_path
        manifest = build_manifest(url, hashes, bundle_id=bundle_id, version=version, title=name)
        values = {
            "name": name,
            "kind": kind,
            "bundle_id": bundle_id,
            "version": version,
            "file_name": file_name,
            "file_size": hashes.size,
            "file_sha256": hashes.whole.hexdigest(),
            "download_url": download_url,
            "manifest": manifest,
        }
        if self.store.get(name) is not None:
            raise Conflict(f"an app named {name!r} already exists")
        self.files.write(app_id, file_name, data)
        try:
            return self._insert(values, app_id)
        except AdminError:
            self.files.remove(app_id)
            raise

    def get(self, key: str) -> AppRow:
        found = self.store.get(key)
        if found is None:
            raise NotFound(f"no app {key!r}")
        return found

    def delete(self, key: str) -> AppRow:
        """Only an unassigned app: unassigning is what removes it from devices (at their next
        ManagedApplicationList), and a deleted app is no longer recognised as ours."""
        found = self.get(key)
        targets = sorted(self.store.assignments(found.id))
        if targets:
            raise Conflict(
                f"app {found.name!r} is still assigned to {', '.join(targets)}: unassign it first"
            )
        self.store.delete(found.id)
        self.files.remove(found.id)
        return found

    def assign(self, key: str, body: Any) -> Assigned:
        """Add or replace one assignment: its behaviour, management flags and managed app
        configuration (both checked against Apple's schema; left out: the defaults). A
        required one is rolled out to its devices now (or scheduled as a job)."""
        found = self.get(key)
        if not isinstance(body, dict):
            raise BadRequest("expected a JSON object")
        unknown = sorted(set(body) - ASSIGNMENT_FIELDS)
        if unknown:
            raise BadRequest(f"unknown fields: {', '.join(unknown)}")
        target = check_target(body.get("target"))
        try:
            behaviour = catalog.check_behaviour(body.get("behaviour", "required"))
            flags = options.check_flags(found.kind, body.get("management_flags"))
            configuration = options.check_configuration(body.get("configuration"))
        except (CatalogError, options.OptionError) as exc:
            raise BadRequest(str(exc)) from None
        self.store.assign(
            found.id, target, behaviour, management_flags=flags, configuration=configuration
        )
        if self.on_assignments is not None:
            self.on_assignments(found.id)
        rollout = None
        if behaviour == "required" and self.roll_out is not None:
            rollout = self.roll_out(found.id)
        return Assigned(found, target, behaviour, rollout)

    def unassign(self, key: str, target: str) -> AppRow:
        found = self.get(key)
        if not self.store.unassign(found.id, check_target(target)):
            raise NotFound(f"app {found.name!r} is not assigned to {target!r}")
        if self.on_assignments is not None:
            self.on_assignments(found.id)
        return found

    def _insert(self, values: Mapping[str, Any], app_id: str | None = None) -> AppRow:
        try:
            return self.store.create(values, app_id)
        except AppNameTaken as exc:
            raise Conflict(str(exc)) from None

    # Apps and Books --------------------------------------------------------------------------

    def install_token(self, data: bytes | str) -> ContentToken:
        """Check a content token (and that Apple accepts it), then keep it (mode 0600)."""
        try:
            token = parse_token(data)
        except TokenError as exc:
            raise Unprocessable(str(exc)) from None
        if token.days_left() < 0:
            raise Unprocessable(f"the content token expired on {token.expires_at:%Y-%m-%d}")
        try:
            self.client_factory(token, self.vpp_url).client_config()
        except VppError as exc:
            raise Unprocessable(f"Apple refused the content token: {exc}") from None
        write_private(self.token_file, token.raw.encode())
        log.info(
            "vpp_token_installed",
            extra={"fields": {"org": token.org_name, "expires": token.expires_at.isoformat()}},
        )
        return token

    def token(self) -> ContentToken | None:
        if not self.token_file.is_file():
            return None
        try:
            return parse_token(self.token_file.read_bytes())
        except TokenError as exc:
            log.error("vpp_token_unusable", extra={"fields": {"error": str(exc)}})
            return None

    def token_summary(self) -> dict[str, Any]:
        token = self.token()
        if token is None:
            return {"installed": False, "warnings": ["no Apps and Books content token"]}
        days = token.days_left()
        warnings = []
        if days < 0:
            warnings.append("the content token has EXPIRED: licenses cannot be managed")
        elif days < EXPIRY_WARNING_DAYS:
            warnings.append(
                f"the content token expires in {days} days: download a new one in Apple "
                "Business (or School) Manager and upload it"
            )
        return {
            "installed": True,
            "org_name": token.org_name,
            "expires_at": token.expires_at.isoformat(),
            "days_left": days,
            "warnings": warnings,
        }

    def client(self) -> VppClient:
        token = self.token()
        if token is None:
            raise Conflict("no Apps and Books content token: upload one first")
        return self.client_factory(token, self.vpp_url)

    def sync_assets(self) -> list[dict[str, Any]]:
        assets = self._apple(lambda c: c.assets())
        self.store.save_assets(assets)
        return self.store.assets()

    def assign_licenses(
        self, key: str, body: Any, wait: float = 10.0, progress: Progress | None = None
    ) -> dict[str, Any]:
        return self._manage(key, body, "ASSOCIATE", wait, progress)

    def revoke_licenses(
        self, key: str, body: Any, wait: float = 10.0, progress: Progress | None = None
    ) -> dict[str, Any]:
        return self._manage(key, body, "DISASSOCIATE", wait, progress)

    def follow(
        self,
        event_id: str,
        wait: float = 10.0,
        poll: float = 0.2,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Poll an event until Apple finishes it (or ``wait`` passes) and record the outcome."""
        if self.store.event(event_id) is None:
            raise NotFound(f"no Apps and Books event {event_id!r}")
        status: EventStatus = self._apple(
            lambda c: c.wait_event(event_id, timeout=wait, poll_seconds=poll, progress=progress)
        )
        if status.done:
            self.store.finish_event(event_id, status.status, status.num_completed, status.failures)
            fields = {
                "event_id": event_id,
                "status": status.status,
                "failures": len(status.failures),
            }
            log.info("vpp_event_done", extra={"fields": fields})
        found = self.store.event(event_id)
        assert found is not None
        return found

    def follow_pending(self) -> int:
        """Ask Apple once about each event still PENDING here (an API or CLI call that
        stopped waiting); the number that finished. Run with the periodic upkeep."""
        if self.token() is None:
            return 0
        finished = 0
        for event_id in self.store.pending_events():
            try:
                if self.follow(event_id, wait=0)["status"] != "PENDING":
                    finished += 1
            except AdminError as exc:
                fields = {"event_id": event_id, "error": exc.message}
                log.warning("vpp_event_unfollowed", extra={"fields": fields})
                break  # Apple is refusing or away: try again at the next run
        return finished

    def _manage(
        self, key: str, body: Any, event_type: str, wait: float, progress: Progress | None
    ) -> dict[str, Any]:
        found = self.get(key)
        if found.kind != "app_store" or found.adam_id is None:
            raise Unprocessable(f"app {found.name!r} is not an App Store app: it has no licenses")
        serials = check_serials(body)
        asset = self.store.assets(found.adam_id)
        pricing = asset[0]["pricing_param"] if asset else "STDQ"
        pair = [(found.adam_id, pricing)]
        event_id = self._apple(
            lambda c: (
                c.associate(pair, serials)
                if event_type == "ASSOCIATE"
                else c.disassociate(pair, serials)
            )
        )
        self.store.start_event(event_id, event_type, found.adam_id, pricing, serials)
        return self.follow(event_id, wait, progress=progress)

    def _apple(self, call: Callable[[VppClient], Any]) -> Any:
        client = self.client()
        try:
            return call(client)
        except VppError as exc:
            log.warning("vpp_refused", extra={"fields": {"error": str(exc)}})
            kind = (
                Kind.RATE_LIMITED
                if exc.status == 429
                else Kind.UPSTREAM
                if exc.status in (0,) or exc.status >= 500
                else Kind.UNPROCESSABLE
            )
            raise AdminError(str(exc), kind) from None


def check_target(target: Any) -> str:
    if target == ALL:
        return ALL
    if isinstance(target, str) and target.startswith("tag:") and 0 < len(target) - 4 <= 128:
        return target
    raise BadRequest("target: 'all' or 'tag:<device tag>'")


def check_serials(body: Any) -> list[str]:
    if not isinstance(body, dict) or set(body) != {"serials"}:
        raise BadRequest('expected {"serials": ["C02...", ...]}')
    serials = body["serials"]
    if not isinstance(serials, list) or not serials or len(serials) > MAX_SERIALS:
        raise BadRequest(f"serials: a list of 1 to {MAX_SERIALS} serial numbers")
    bad = [s for s in serials if not isinstance(s, str) or not _SERIAL.match(s)]
    if bad:
        raise BadRequest(f"serials: not a serial number: {bad[0]!r}")
    return sorted(set(serials))


def describe_app(
    app: AppRow, assignments: Mapping[str, str], details: Sequence[Assignment] = ()
) -> dict[str, Any]:
    """``details``: the assignments with their flags and configuration (when given, they
    replace the plain target -> behaviour list)."""
    listed = [
        {
            "target": a.target,
            "behaviour": a.behaviour,
            "management_flags": a.management_flags
            if a.management_flags is not None
            else default_flags(app.kind),
            "configuration": a.configuration,
        }
        for a in details
    ] or [{"target": t, "behaviour": b} for t, b in sorted(assignments.items())]
    return {
        "id": app.id,
        "name": app.name,
        "kind": app.kind,
        "bundle_id": app.bundle_id,
        "adam_id": app.adam_id,
        "version": app.version,
        "file": None
        if app.file_name is None
        else {"name": app.file_name, "size": app.file_size, "sha256": app.file_sha256},
        "download_url": app.download_url,
        "manifest_url": app.manifest_url,
        "manifest": app.manifest,
        "assignments": listed,
        "created_at": app.created_at.isoformat(),
        "updated_at": app.updated_at.isoformat(),
    }


def license_rows(store: AppPort, adam_id: str | None) -> list[dict[str, Any]]:
    if adam_id is None:
        return []
    return [
        {
            "serial_number": row.serial_number,
            "status": row.status,
            "event_id": row.event_id,
            "error": row.error,
            "updated_at": row.updated_at.isoformat(),
        }
        for row in store.licenses(adam_id)
    ]
