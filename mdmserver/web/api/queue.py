"""``GET`` / ``DELETE /api/v1/devices/<id>/queue``: what waits for a device; cancel it."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from mdmserver.admin import views as out
from mdmserver.web.api import actor, admin, audited

bp = Blueprint("queue", __name__)


@bp.get("/devices/<ident>/queue")
def show_queue(ident: str) -> Response:
    include_done = request.args.get("all", "false").lower() in ("1", "true", "yes")
    device_id, items = admin().queues.show(ident, include_done=include_done)
    return jsonify(device_id=device_id, commands=[out.queue_item(i) for i in items])


@bp.delete("/devices/<ident>/queue")
@audited("queue.clear")
def clear_queue(ident: str) -> Response:
    device_id, cancelled = admin().queues.clear(ident, actor=actor())
    return jsonify(device_id=device_id, cancelled=cancelled)
