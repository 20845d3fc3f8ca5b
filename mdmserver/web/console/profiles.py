"""The console's configuration profiles: the list with assignments and device status, a new
profile from a template (its variables as a form; secret ones as password fields, never shown
again) or from an uploaded .mobileconfig, and assignment to tags or all devices.

The profile service validates against Apple's schema as for the API; refusals are shown with
the key paths, audited with their status under the API's action names (``profiles.*``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import abort, current_app, redirect, render_template, request, url_for

from mdmserver.admin.errors import AdminError, BadRequest, NotFound, Unprocessable
from mdmserver.profiles.admin import ProfileAdmin, ProfileNotFound, describe_state
from mdmserver.profiles.template import TemplateError
from mdmserver.profiles.validation import ProfileRefused
from mdmserver.web.console.auth import actor, admin, require
from mdmserver.web.console.blueprint import bp
from mdmserver.web.runtime import runtime

NAME_MAX = 128
UPLOAD_MAX = 1024 * 1024


def profiles_admin() -> ProfileAdmin:
    return runtime(current_app).profiles.admin


@contextmanager
def _change(action: str, targets: list[str]) -> Iterator[None]:
    """One audit row for the change; the profile service's refusals become 4xx with paths."""
    with admin().audit.record(actor(), f"profiles.{action}", targets):
        try:
            yield
        except ProfileRefused as exc:
            raise Unprocessable(str(exc)) from None
        except ProfileNotFound as exc:
            raise NotFound(str(exc)) from None
        except (ValueError, TemplateError) as exc:
            raise BadRequest(str(exc)) from None


@bp.get("/profiles")
@require("view")
def profiles() -> str:
    return _page()


def _page(*, error: str | None = None, notice: str | None = None) -> str:
    service = profiles_admin()
    rows = [(p, service.store.assignments(p.id)) for p in service.list()]
    return render_template(
        "profiles.html",
        rows=rows,
        templates=service.templates(),
        error=error,
        notice=notice,
    )


@bp.get("/profiles/<key>")
@require("view")
def profile(key: str) -> str:
    service = profiles_admin()
    try:
        row = service.get(key)
        states = [describe_state(s) for s in service.status(key)]
    except ProfileNotFound as exc:
        abort(404, str(exc))
    return render_template(
        "profile.html", p=row, assignments=service.store.assignments(row.id), states=states
    )


@bp.get("/profiles/new/<template>")
@require("profiles.manage")
def profile_form(template: str) -> str:
    found = profiles_admin().templates().get(template)
    if found is None:
        abort(404, f"no template {template!r}")
    return render_template("profile_new.html", template=found)


@bp.post("/profiles/new/<template>")
@require("profiles.manage")
def profile_create(template: str) -> Any:
    service = profiles_admin()
    found = service.templates().get(template)
    if found is None:
        abort(404, f"no template {template!r}")
    name = request.form.get("name", "").strip()
    try:
        with _change("create_profile", [name]):
            if not 0 < len(name) <= NAME_MAX:
                raise BadRequest(f"name: 1 to {NAME_MAX} characters")
            values: dict[str, Any] = {}
            for variable in found.variables.values():
                raw = request.form.get(f"var.{variable.name}", "")
                if raw != "":
                    values[variable.name] = _typed(variable.type, raw, variable.name)
            saved = service.from_template(template, name, values)
    except AdminError as exc:
        page = render_template("profile_new.html", template=found, error=exc.message)
        return page, exc.status
    return redirect(url_for("console.profile", key=saved.profile.id))


def _typed(kind: str, raw: str, name: str) -> Any:
    if kind in ("integer", "int"):
        if not raw.lstrip("-").isdigit() or len(raw) > 12:
            raise BadRequest(f"{name}: a whole number, got {raw[:20]!r}")
        return int(raw)
    if kind in ("boolean", "bool"):
        return raw in ("true", "on", "1", "yes")
    if kind in ("list", "array"):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


@bp.post("/profiles/upload")
@require("profiles.manage")
def profile_upload() -> Any:
    name = request.form.get("name", "").strip()
    upload = request.files.get("file")
    data = upload.read(UPLOAD_MAX + 1) if upload is not None else b""
    try:
        with _change("upload_profile", [name]):
            if not 0 < len(name) <= NAME_MAX:
                raise BadRequest(f"name: 1 to {NAME_MAX} characters")
            if not data:
                raise BadRequest("choose a .mobileconfig file to upload")
            if len(data) > UPLOAD_MAX:
                raise BadRequest("the profile is larger than 1 MiB")
            saved = profiles_admin().from_upload(name, data)
    except AdminError as exc:
        return _page(error=exc.message), exc.status
    return redirect(url_for("console.profile", key=saved.profile.id))


@bp.post("/profiles/<key>/assignments")
@require("profiles.manage")
def profile_assign(key: str) -> Any:
    target = request.form.get("target", "")
    remove = request.form.get("go") == "remove"
    try:
        with _change("unassign" if remove else "assign", [key, target]):
            service = profiles_admin()
            done = service.unassign(key, target) if remove else service.assign(key, target)
    except AdminError as exc:
        return _page(error=exc.message), exc.status
    warning = "; ".join(w.message for w in done.warnings)
    return _page(notice=warning or f"{'removed' if remove else 'assigned'} {target}")
