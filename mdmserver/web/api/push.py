"""Push endpoints of the admin API: wake a device now, and see how pushes are going.

    POST /api/v1/devices/<device_id>/push   202 {"device_id", "enrollments": [...]}; 404 if
                                            the device has no active enrollment
    GET  /api/v1/devices/<device_id>/push   the last push to each of its channels
    GET  /api/v1/push/status                outcomes per enrollment, certificate errors, backlog

Registered by the app factory as its own blueprint; it checks ``Authorization: Bearer <key>``
(scope ``admin``) with the admin service's API keys, like the rest of ``/api/v1``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from mdmserver.logs import get_logger
from mdmserver.service.push_scheduling import Pusher
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
    admin = runtime(current_app).admin
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if admin is None or scheme.lower() != "bearer" or not key.strip():
        return _error(401, "missing API key: send Authorization: Bearer <key>")
    info = admin.api_keys.authenticate(key.strip())
    if info is None:
        return _error(401, "invalid or revoked API key")
    if info.scope != "admin":
        return _error(403, f"this API key has scope {info.scope!r}; the admin API needs 'admin'")
    request.environ["mdmserver.api_key"] = info.name
    return None


@bp.post("/devices/<device_id>/push")
def push_device(device_id: str) -> Response:
    channels = _pusher().push_device(device_id)
    if not channels:
        return _error(404, f"device {device_id!r} has no active enrollment to push to")
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
