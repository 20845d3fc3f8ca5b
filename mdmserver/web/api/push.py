"""Push endpoints of the admin API: wake a device now, and see how pushes are going.

    POST /api/v1/devices/<device_id>/push   202 {"device_id", "enrollments": [...]}; 404 if
                                            the device has no active enrollment
    GET  /api/v1/devices/<device_id>/push   the last push to each of its channels
    GET  /api/v1/push/status                outcomes per enrollment, certificate errors, backlog

Nested under the ``/api/v1`` blueprint, so the API-key check (scope ``admin``) and the error
answers are that blueprint's, as for every other resource. A push request is a change made
through the admin API, so it is in the audit log (action ``device.push``), refused ones
too, like ``DELETE /devices/<id>/queue``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify

from mdmserver.admin.errors import NotFound
from mdmserver.logs import get_logger
from mdmserver.push.scheduling import Pusher
from mdmserver.web.api import actor, admin, error
from mdmserver.web.runtime import runtime

log = get_logger("api.push")

bp = Blueprint("push_api", __name__)


def _pusher() -> Pusher:
    pusher = runtime(current_app).pusher
    assert pusher is not None, "the pusher is built by create_app"
    return pusher


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
                "by": g.api_key.name,
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
        return error(404, f"device {device_id!r} has no active enrollment")
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
