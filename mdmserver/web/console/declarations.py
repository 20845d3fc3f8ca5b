"""The console's declarations (Declarative Device Management): the list with assignments, a
declaration saved from its Type and Payload (validated against Apple's schema by the same
service as ``PUT /api/v1/declarations/{id}``), and assignment to tags or all devices. Each
device's page shows the state its declarations have on the device (pages.py)."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, render_template, request

from mdmserver.admin.errors import AdminError, BadRequest, Conflict, NotFound, Unprocessable
from mdmserver.ddm.service import DDMService, DeclarationConflict, DeclarationNotFound
from mdmserver.ddm.validate import DeclarationRefused
from mdmserver.web.console.auth import actor, admin, require
from mdmserver.web.console.blueprint import bp
from mdmserver.web.runtime import runtime

PAYLOAD_MAX = 64 * 1024


def ddm() -> DDMService | None:
    return runtime(current_app).ddm.service


def _page(*, status: int = 200, **extra: Any) -> tuple[str, int]:
    ddm = runtime(current_app).ddm
    rows = [(d, ddm.store.assignments(d.identifier)) for d in ddm.service.declarations()]
    return render_template("declarations.html", rows=rows, **extra), status


def _run(action: str, targets: list[str], call: Any, *args: Any) -> Any:
    """One audit row (the API's action names); the service's refusals as 4xx."""
    with admin().audit.record(actor(), f"declarations.{action}", targets):
        try:
            return call(*args)
        except DeclarationRefused as exc:
            raise Unprocessable(str(exc)) from None
        except DeclarationNotFound as exc:
            raise NotFound(str(exc)) from None
        except DeclarationConflict as exc:
            raise Conflict(str(exc)) from None
        except ValueError as exc:
            raise BadRequest(str(exc)) from None


@bp.get("/declarations")
@require("view")
def declarations() -> tuple[str, int]:
    return _page()


@bp.post("/declarations")
@require("profiles.manage")
def declaration_save() -> tuple[str, int]:
    service = ddm()
    identifier = request.form.get("identifier", "").strip()
    text = request.form.get("payload", "")
    kind = request.form.get("type", "").strip()
    try:
        if service is None:
            raise NotFound("declarative management is not set up on this server")
        if len(text) > PAYLOAD_MAX:
            raise BadRequest(f"the payload is longer than {PAYLOAD_MAX} characters")
        try:
            payload = json.loads(text or "{}")
        except json.JSONDecodeError as exc:
            raise BadRequest(f"the payload is not valid JSON: {exc}") from None
        saved = _run(
            "put", [identifier], service.put, identifier, {"Type": kind, "Payload": payload}
        )
    except AdminError as exc:
        return _page(status=exc.status, error=exc.message, form=request.form)
    word = "saved" if saved.changed else "unchanged"
    return _page(notice=f"{identifier} {word}; {saved.synced} device(s) will sync")


@bp.post("/declarations/<identifier>/assignments")
@require("profiles.manage")
def declaration_assign(identifier: str) -> tuple[str, int]:
    service = ddm()
    target = request.form.get("target", "").strip()
    remove = request.form.get("go") == "remove"
    try:
        if service is None:
            raise NotFound("declarative management is not set up on this server")
        call = service.unassign if remove else service.assign
        changed, synced = _run(
            "unassign" if remove else "assign", [identifier, target], call, identifier, target
        )
    except AdminError as exc:
        return _page(status=exc.status, error=exc.message)
    verb = ("removed from" if remove else "assigned to") if changed else "already so for"
    return _page(notice=f"{identifier} {verb} {target}; {synced} device(s) will sync")
