"""Push endpoints of the admin API: wake a device now, and see how pushes are going.

    POST /api/v1/devices/<device_id>/push   202 {"device_id", "enrollments": [...]}; 404 if
                                            the device has no active enrollment
    GET  /api/v1/devices/<device_id>/push   the last push to each of its channels
    GET  /api/v1/push/status                outcomes per enrollment, certificate errors, backlog

Registered by the app factory as its own blueprint; it checks ``Authorization: Bearer <key>``
(scope ``admin``) with the admin service's API keys, like the rest of ``/api/v1``. A push
request is a change made through the admin API, so it is in the audit log (action
``device.push``), refused ones too, like ``DELETE /devices/<id>/queue``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from mdmserver.logs import get_logger
from mdmserver.service.admin.errors import AdminError, NotFound
from mdmserver.service.push_scheduling import Pusher
from mdmserver.web.api import actor, admin
from mdmserver.web.runtime import runtime

log = get_logger("api.push")

bp = Blueprint("push_api", __name__, url_prefix="/api/v1")


def _pusher() -> Pusher:
    pusher = runtime(current_app).pusher
    assert pusher is not None, "the pusher is built by create_app"
    return pusher


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="mdmserver admin API"'
    return response


@bp.before_request
def _authenticate() -> Response | None:
    service = runtime(current_app).admin
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if service is None or scheme.lower() != "bearer" or not key.strip():
        return _error(401, "missing API key: send Authorization: Bearer <key>")
    info = service.api_keys.authenticate(key.strip())
    if info is None:
        return _error(401, "invalid or revoked API key")
    if info.scope != "admin":
        return _error(403, f"this API key has scope {info.scope!r}; the admin API needs 'admin'")
    request.environ["mdmserver.api_key"] = info.name
    g.api_key = info  # the audit log names it (mdmserver.web.api.actor)
    return None


@bp.errorhandler(AdminError)
def _refused(exc: AdminError) -> Response:
    """A refusal raised inside an audit record: the row is written, then this answers."""
    return _error(exc.status, exc.message)


@bp.post("/devices/<device_id>/push")
def push_device(device_id: str) -> Response:
    """Audited like every change made through the admin API: who asked to wake which device,
    and the refusal when it has nothing to push to (a 404 is worth keeping: a wrong id)."""
    with admin().audit.record(actor(), "device.push", [device_id]) as entry:
        channels = _pusher().push_device(device_id)
        if not channels:
            raise NotFound(f"device {device_id!r} has no active enrollment to push to")
        entry.detail["enrollments"] = channels
    log.info(
        "push_requested",
        extra={
            "fields": {
                "device_id": device_id,
                "enrollments": len(channels),
                "by": request.environ.get("mdmserver.api_key"),
            }
        },
    )
    response = jsonify({"device_id": device_id, "enrollments": channels})
    response.status_code = 202
    return response


@bp.get("/devices/<device_id>/push")
def device_push_status(device_id: str) -> Response:
    pusher = _pusher()
    channels = pusher.status_store.channels(device_id)
    if not channels:
        return _error(404, f"device {device_id!r} has no active enrollment")
    return jsonify(
        {
            "device_id": device_id,
            "enrollments": {eid: _jsonable(pusher.enrollment_status(eid)) for eid in channels},
        }
    )


@bp.get("/push/status")
def push_status() -> Response:
    return jsonify(_jsonable(_pusher().status()))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
