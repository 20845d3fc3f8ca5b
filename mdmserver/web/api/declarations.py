"""``/api/v1/declarations``: declarations as admin objects, their assignments, and what each
device's channels report about them (``/api/v1/devices/<id>/declarations`` and
``/status-items``).

Thin handlers over :class:`mdmserver.ddm.service.DDMService`, nested under the admin API
blueprint (same API-key check). Every change is one audit row (``@audited``), refusals
included; an invalid declaration is a 422 whose ``problems`` name each key path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from mdmserver.admin.errors import BadRequest, Conflict, NotFound
from mdmserver.compliance.policy import PolicyError
from mdmserver.ddm import assets, os_update
from mdmserver.ddm.service import DDMService, parse_target
from mdmserver.errors import DomainError
from mdmserver.storage.sql.ddm_store import DeclarationRow
from mdmserver.web.api import actor, admin, audited, json_body
from mdmserver.web.runtime import runtime

bp = Blueprint("declarations", __name__)


def _service() -> DDMService:
    return runtime(current_app).ddm.service


def _run(call: Any, *args: Any) -> Any:
    """The service's domain errors as they are; a bad value it refuses with a plain
    ValueError (a malformed target) as a 400, so the audit row records that status."""
    try:
        return call(*args)
    except DomainError:
        raise
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def describe(row: DeclarationRow, assignments: list[str]) -> dict[str, Any]:
    return {
        "Identifier": row.identifier,
        "Type": row.type,
        "Payload": row.payload,
        "ServerToken": row.server_token,
        "class": row.cls,
        "managed_by": row.managed_by,
        "assignments": assignments,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def _warnings(found: list[Any]) -> list[dict[str, str]]:
    return [{"path": w.path, "message": w.message} for w in found]


@bp.get("/declarations")
def list_declarations() -> Response:
    store = runtime(current_app).ddm.store
    return jsonify(
        declarations=[
            describe(d, store.assignments(d.identifier)) for d in _service().declarations()
        ]
    )


@bp.put("/declarations/<identifier>")
@audited("declarations.put")
def put_declaration(identifier: str) -> tuple[Response, int]:
    body = json_body()
    if not isinstance(body, Mapping):
        raise BadRequest('expected a JSON object: {"Type": ..., "Payload": {...}}')
    existed = runtime(current_app).ddm.store.get(identifier) is not None
    saved = _run(_service().put, identifier, body)
    answer = describe(saved.declaration, runtime(current_app).ddm.store.assignments(identifier))
    answer |= {"changed": saved.changed, "synced": saved.synced}
    answer["warnings"] = _warnings(saved.warnings)
    return jsonify(answer), 200 if existed else 201


@bp.get("/declarations/<identifier>")
def show_declaration(identifier: str) -> Response:
    row = _run(_service().get, identifier)
    return jsonify(describe(row, runtime(current_app).ddm.store.assignments(identifier)))


@bp.delete("/declarations/<identifier>")
@audited("declarations.delete")
def delete_declaration(identifier: str) -> Response:
    synced = _run(_service().delete, identifier)
    return jsonify(deleted=identifier, synced=synced)


@bp.post("/declarations/<identifier>/assignments")
@audited("declarations.assign")
def assign(identifier: str) -> tuple[Response, int]:
    body = json_body()
    target = body.get("target") if isinstance(body, Mapping) else None
    if not isinstance(target, str):
        raise BadRequest("target: required, 'all' or 'tag:<name>'")
    added, synced = _run(_service().assign, identifier, target)
    return jsonify(assigned=added, synced=synced), 201 if added else 200


@bp.delete("/declarations/<identifier>/assignments/<path:target>")
@audited("declarations.unassign")
def unassign(identifier: str, target: str) -> Response:
    removed, synced = _run(_service().unassign, identifier, target)
    if not removed:
        raise NotFound(f"declaration {identifier!r} is not assigned to {target!r}")
    return jsonify(unassigned=True, synced=synced)


@bp.put("/declarations/<identifier>/data")
@audited("declarations.put_data")
def put_asset_data(identifier: str) -> tuple[Response, int]:
    """The body (any bytes) becomes an asset this server hosts for its devices."""
    base = runtime(current_app).config.server_url
    if not base:
        raise Conflict("hosting assets needs the server's public URL (MDM_SERVER_URL)")
    declaration_type = request.args.get("type", "com.apple.asset.data")
    content_type = request.mimetype or "application/octet-stream"
    existed = runtime(current_app).ddm.store.get(identifier) is not None
    data = request.get_data(cache=False)
    saved = _run(
        assets.put_asset_data, _service(), identifier, declaration_type, content_type, data, base
    )
    answer = describe(saved.declaration, runtime(current_app).ddm.store.assignments(identifier))
    answer |= {"changed": saved.changed, "synced": saved.synced, "warnings": []}
    return jsonify(answer), 200 if existed else 201


# OS-update enforcement ----------------------------------------------------------------------

_OS_UPDATE_FIELDS = frozenset({"version", "by", "tag", "platform", "build"})


@bp.post("/os-updates")
@audited("os_updates.enforce")
def enforce_os_update() -> tuple[Response, int]:
    body = json_body()
    if not isinstance(body, Mapping):
        raise BadRequest('expected a JSON object: {"version": ..., "by": ...}')
    unknown = sorted(set(body) - _OS_UPDATE_FIELDS)
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown field; use {', '.join(sorted(_OS_UPDATE_FIELDS))}")
    for name in _OS_UPDATE_FIELDS:
        if name in body and not isinstance(body[name], str):
            raise BadRequest(f"{name}: must be a string")
    if "version" not in body or "by" not in body:
        raise BadRequest("version and by are required")
    try:
        done = os_update.enforce(
            _service(),
            runtime(current_app).inventory.policies,
            body["version"],
            body["by"],
            tag=body.get("tag"),
            platform=body.get("platform"),
            build=body.get("build"),
            actor=actor(),
        )
    except PolicyError as exc:
        raise BadRequest(str(exc)) from None
    except DomainError:
        raise
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return jsonify(
        identifier=done.identifier,
        activation=done.activation,
        target=done.target,
        version=done.version,
        by=done.by.isoformat(),
        synced=done.synced,
    ), 201


@bp.get("/os-updates")
def os_update_progress() -> Response:
    target = request.args.get("target", "all")
    try:
        return jsonify(os_update.progress(_service(), _run(parse_target, target)))
    except LookupError as exc:
        raise NotFound(str(exc)) from None


# A device's side ------------------------------------------------------------------------------


def _channels(ident: str) -> list[str]:
    """The device's enrollment channels (device channel first), by UDID or serial number."""
    detail = admin().devices.show(ident)
    ids = [e.id for e in detail.enrollments]
    return sorted(ids, key=lambda e: (e != detail.device.id, e))


@bp.get("/devices/<ident>/declarations")
def device_declarations(ident: str) -> Response:
    service = _service()
    return jsonify(channels=[service.device_declarations(e) for e in _channels(ident)])


@bp.get("/devices/<ident>/status-items")
def device_status_items(ident: str) -> Response:
    store = runtime(current_app).ddm.store
    channels = []
    for enrollment_id in _channels(ident):
        items = store.status_items(enrollment_id)
        channels.append(
            {
                "enrollment_id": enrollment_id,
                "status_items": [
                    {"item": name, "value": value, "updated_at": at.isoformat()}
                    for name, (value, at) in sorted(items.items())
                ],
                "history": [
                    {**h, "at": h["at"].isoformat()}
                    for h in store.status_history(enrollment_id, 50)
                ],
            }
        )
    first = channels[0] if channels else {"status_items": []}
    return jsonify(status_items=first["status_items"], channels=channels)
