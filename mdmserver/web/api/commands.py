"""``POST /api/v1/commands`` (validate, then queue) and ``GET /api/v1/commands/<uuid>``."""

from __future__ import annotations

from collections import Counter

from flask import Blueprint, Response, jsonify

from mdmserver.admin import views as out
from mdmserver.web.api import actor, admin, audited, json_body

bp = Blueprint("commands", __name__)


@bp.post("/commands")
@audited("command.send")
def send_command() -> tuple[Response, int]:
    sent = admin().commands.send(json_body(), actor=actor())
    body = {
        "command_uuid": sent.command_uuid,
        "request_type": sent.request_type,
        "targets": sent.targets,
        "skipped": sent.skipped,
        "warnings": [{"path": w.path, "message": w.message} for w in sent.warnings],
    }
    return jsonify(body), 201


@bp.get("/commands/<command_uuid>")
def command_status(command_uuid: str) -> Response:
    request_type, targets = admin().commands.status(command_uuid)
    return jsonify(
        command_uuid=command_uuid,
        request_type=request_type,
        counts=dict(Counter(t.item.status.value for t in targets)),
        targets=[
            {**out.queue_item(t.item, t.device_id or ""), "result": t.result_json()}
            for t in targets
        ],
    )
