"""The console's apps (issue #17): the catalog with its kinds, bundle ids, versions and Apps and
Books license counts, each app's assignments (targets and install behaviour) and its state on
each device; and what ``/api/v1/apps`` does, through the same apps service and audited under
the API's action names: adding an App Store app, uploading an in-house ``.ipa`` or a macOS
``.pkg``, deleting an app, assigning / unassigning it, assigning and revoking Apps and Books
licenses by serial, following Apple's events, syncing assets and uploading the content
token. Each device's page shows its apps' states (:func:`device_apps`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, current_app, render_template, request

from mdmserver.admin.errors import AdminError, BadRequest
from mdmserver.apps.desired import MANAGEMENT_FLAG_REMOVE_WITH_MDM
from mdmserver.apps.reconcile import retry_at
from mdmserver.apps.service import AppsService, Assigned
from mdmserver.web.console.auth import actor, admin, require
from mdmserver.web.console.blueprint import bp
from mdmserver.web.runtime import runtime

KIND_NAMES = {
    "app_store": "App Store",
    "ios_inhouse": "In-house (iOS)",
    "macos_pkg": "macOS package",
}
STATES_SHOWN = 500  # devices listed on one app's page
FLAGS = {MANAGEMENT_FLAG_REMOVE_WITH_MDM: "removed with MDM"}
T = TypeVar("T")


def apps_service() -> AppsService | None:
    service: AppsService | None = runtime(current_app).apps
    return service


def _service() -> AppsService:
    service = apps_service()
    if service is None:
        abort(404, "apps are not set up on this server")
    return service


def _flags(kind: str) -> list[str]:
    """The ManagementFlags the server's install commands carry for this kind of app."""
    return [] if kind == "macos_pkg" else list(FLAGS.values())


def _licenses(service: AppsService) -> dict[str, dict[str, Any]]:
    """adam id -> Apple's counts as last synced, and how many serials hold one here."""
    counts = {a["adam_id"]: dict(a) for a in service.store.assets()}
    for app in service.store.all():
        if app.adam_id is None:
            continue
        held = service.store.license_counts(app.adam_id)
        entry = counts.setdefault(app.adam_id, {})
        entry["here"] = held.get("assigned", 0)
        entry["failed"] = held.get("failed", 0)
    return counts


def _page(*, status: int = 200, error: str | None = None, notice: str | None = None) -> Any:
    service = _service()
    rows = [(a, service.store.assignments(a.id)) for a in service.store.all()]
    return render_template(
        "apps.html",
        rows=rows,
        kinds=KIND_NAMES,
        licenses=_licenses(service),
        token=service.token_summary(),
        pending=service.store.pending_events(),
        kinds_uploaded={k: KIND_NAMES[k] for k in ("ios_inhouse", "macos_pkg")},
        flags=_flags,
        error=error,
        notice=notice,
    ), status


@bp.get("/apps")
@require("view")
def apps() -> Any:
    return _page()


@bp.get("/apps/<key>")
@require("view")
def app_detail(key: str) -> Any:
    service = _service()
    try:
        found = service.get(key)
    except AdminError as exc:
        abort(exc.status, exc.message)
    counts = service.store.state_counts(found.id)
    states = [describe_state(s) for s in service.store.app_states(found.id, limit=STATES_SHOWN)]
    return render_template(
        "app.html",
        a=found,
        kind=KIND_NAMES.get(found.kind, found.kind),
        assignments=service.store.assignments(found.id),
        flags=_flags(found.kind),
        states=states,
        total=sum(counts.values()),
        counts=counts,
        licenses=_licenses(service).get(found.adam_id or "", {}),
    )


@bp.post("/apps/<key>/assignments")
@require("profiles.manage")
def app_assign(key: str) -> Any:
    service = _service()
    target = request.form.get("target", "").strip()
    behaviour = request.form.get("behaviour", "required")
    remove = request.form.get("go") == "remove"
    action = "app.unassign" if remove else "app.assign"
    done: Assigned | None = None
    try:
        with admin().audit.record(actor(), action, [key, target]):
            if remove:
                found = service.unassign(key, target)
            else:
                done = service.assign(key, {"target": target, "behaviour": behaviour})
                found, target, behaviour = done.app, done.target, done.behaviour
    except AdminError as exc:
        return _page(status=exc.status, error=exc.message)
    if remove:
        return _page(notice=f"{found.name} unassigned from {target}")
    return _page(notice=f"{found.name} assigned to {target} ({behaviour}){rollout_note(done)}")


def rollout_note(done: Assigned | None) -> str:
    """What the roll-out of a required assignment did, as the admin reads it."""
    if done is None or done.rollout is None:
        return ""
    if done.rollout.scheduled:
        return ": installing on its devices (in the background)"
    return f": install queued to {sum((done.rollout.queued or {}).values())} devices"


# The catalog and Apps and Books, as /api/v1/apps does them: the same service calls (so the
# same checks), audited under the API's action names. Catalog and licenses need the role that
# manages profiles; the content token, like the push certificate, the one that manages settings.

_APP_STORE_FIELDS = ("name", "adam_id", "bundle_id", "version")
_UPLOAD_FIELDS = ("name", "kind", "bundle_id", "version", "download_url")


def _form(fields: tuple[str, ...]) -> dict[str, str]:
    """The form's non-empty fields of these (an empty field is a default left out)."""
    return {f: v for f in fields if (v := request.form.get(f, "").strip())}


def _file(field: str, what: str) -> bytes:
    upload = request.files.get(field)
    data = upload.read() if upload is not None else b""
    if not data:
        raise BadRequest(f"choose {what}")
    return data


def _serials() -> dict[str, list[str]]:
    """The serial numbers typed one per line (or separated by commas or spaces)."""
    text = request.form.get("serials", "")
    return {"serials": [s for s in re.split(r"[\s,]+", text) if s]}


def _act(action: str, targets: list[str], call: Callable[[], T], notice: Callable[[T], str]) -> Any:
    """One console action: the service call, audited under the API's action name; a refusal is
    the page again with its reason and status (the service changed nothing). A refusal's
    message names the problem, never a secret it was given (the content token)."""
    try:
        with admin().audit.record(actor(), action, targets):
            done = call()
    except AdminError as exc:
        return _page(status=exc.status, error=exc.message)
    return _page(notice=notice(done))


@bp.post("/apps/new")
@require("profiles.manage")
def app_create() -> Any:
    body: dict[str, Any] = {"kind": "app_store", **_form(_APP_STORE_FIELDS)}
    return _act(
        "app.create",
        [body.get("name", "")],
        lambda: _service().create(body),
        lambda found: f"added {found.name} (App Store, Adam ID {found.adam_id})",
    )


@bp.post("/apps/upload")
@require("profiles.manage")
def app_upload() -> Any:
    params = _form(_UPLOAD_FIELDS)
    return _act(
        "app.upload",
        [params.get("name", "")],
        lambda: _service().upload(params, _file("file", "the .ipa or .pkg file")),
        lambda found: (
            f"uploaded {found.name} ({KIND_NAMES.get(found.kind, found.kind)}, {found.bundle_id})"
        ),
    )


@bp.post("/apps/<key>/delete")
@require("profiles.manage")
def app_delete(key: str) -> Any:
    return _act(
        "app.delete", [key], lambda: _service().delete(key), lambda found: f"deleted {found.name}"
    )


@bp.post("/apps/<key>/licenses")
@require("profiles.manage")
def app_licenses(key: str) -> Any:
    service = _service()
    revoke = request.form.get("go") == "revoke"
    manage = service.revoke_licenses if revoke else service.assign_licenses
    what = "revoking licenses" if revoke else "assigning licenses"
    return _act(
        "app.licenses.revoke" if revoke else "app.licenses.assign",
        [key],
        lambda: manage(key, _serials()),
        lambda event: f"{what}: {_event_notice(event)}",
    )


@bp.post("/apps/vpp/token")
@require("settings.manage")
def vpp_token() -> Any:
    return _act(
        "vpp.token",
        ["content-token"],
        lambda: _service().install_token(_file("file", "the .vpptoken file")),
        lambda _: "installed the Apps and Books content token",
    )


@bp.post("/apps/vpp/sync")
@require("profiles.manage")
def vpp_sync() -> Any:
    return _act(
        "vpp.sync",
        ["assets"],
        lambda: _service().sync_assets(),
        lambda assets: f"synced {len(assets)} Apps and Books assets",
    )


@bp.post("/apps/vpp/events/<event_id>/follow")
@require("profiles.manage")
def vpp_follow(event_id: str) -> Any:
    return _act("vpp.follow", [event_id], lambda: _service().follow(event_id), _event_notice)


def _event_notice(event: dict[str, Any]) -> str:
    """What an Apps and Books event came to, as the admin reads it."""
    text = f"Apple's event {event.get('event_id')} is {str(event.get('status', '')).lower()}"
    failures = event.get("failures") or []
    if failures:
        text += f", {len(failures)} failed"
    return text


def describe_state(state: dict[str, Any]) -> dict[str, Any]:
    """One device's state of one app as people read it: the ErrorChain one line per link, and
    when a failed install is tried again."""
    error = state.get("error") or {}
    lines = []
    for link in error.get("ErrorChain") or []:
        if isinstance(link, dict):
            text = link.get("USEnglishDescription") or link.get("LocalizedDescription") or ""
            lines.append(f"{link.get('ErrorDomain', '?')} {link.get('ErrorCode', '?')}: {text}")
    lines.extend(f"refused by Apple's schema: {p}" for p in error.get("refused_by_schema") or [])
    if error and not lines and error.get("status"):
        lines.append(f"answered {error['status']}")
    return {
        **state,
        "errors": lines,
        "retry_at": retry_at(state) if state["status"] == "failed" else None,
    }


def device_apps(device_id: str) -> list[dict[str, Any]]:
    """The apps assigned to a device (or with a state on it), for its page: name, kind,
    behaviour, and the state (``not checked yet`` before its first ManagedApplicationList)."""
    service = apps_service()
    if service is None:
        return []
    assigned = service.store.assigned_to(device_id)
    states = service.store.device_states(device_id)
    names = {a.id: a for a in service.store.all()} if set(states) - set(assigned) else {}
    rows: list[dict[str, Any]] = []
    for app_id in sorted(set(assigned) | set(states)):
        app, behaviour = assigned.get(app_id, (names.get(app_id), None))
        if app is None:
            continue
        state = describe_state(states[app_id]) if app_id in states else None
        rows.append({"app": app, "behaviour": behaviour, "state": state})
    return sorted(rows, key=_by_name)


def _by_name(row: dict[str, Any]) -> str:
    return str(row["app"].name)
