"""Webhook events as a service middleware: after the inner service handled a check-in or a
command result, describe it as JSON and hand it to the emitter (a buffer drained by a thread).

Wraps the core like CertAuth does, so only requests that passed authentication and were stored
produce events; a failure to build or queue an event is logged and never fails the device.

Event body (JSON, UTF-8)::

    {"id": "<uuid>", "type": "mdm.checkin" | "mdm.command_result",
     "timestamp": "<ISO 8601 UTC>", "enrollment_id": "...", "device_id": "...",
     "message_type": "TokenUpdate"            (check-ins)
     "status": "Acknowledged", "command_uuid": "...", "error_codes": [...]   (results)
     "raw_payload": "<the exact request body, base64>"}
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mdmserver.logs import get_logger
from mdmserver.protocol.checkin import CheckinMessage
from mdmserver.protocol.enrollment_id import EnrollmentIdentity
from mdmserver.protocol.results import CommandResult, Status
from mdmserver.service.base import MDMService, Reply
from mdmserver.service.context import DeviceRequest

log = get_logger("webhooks")

CHECKIN_EVENT = "mdm.checkin"
RESULT_EVENT = "mdm.command_result"

Emit = Callable[[bytes], None]


class WebhookEvents:
    def __init__(self, inner: MDMService, emit: Emit, *, include_idle: bool = False) -> None:
        self.inner = inner
        self.emit = emit
        self.include_idle = include_idle

    def checkin(self, request: DeviceRequest, message: CheckinMessage) -> Reply:
        reply = self.inner.checkin(request, message)
        self._send(CHECKIN_EVENT, message.identity, request, {"message_type": message.MESSAGE_TYPE})
        return reply

    def connect(self, request: DeviceRequest, result: CommandResult) -> Reply:
        reply = self.inner.connect(request, result)
        if result.status != Status.IDLE or self.include_idle:
            detail = {
                "status": result.status.value,
                "command_uuid": result.command_uuid,
                "error_codes": [item.code for item in result.error_chain],
            }
            self._send(RESULT_EVENT, result.identity, request, detail)
        return reply

    def _send(
        self,
        kind: str,
        identity: EnrollmentIdentity,
        request: DeviceRequest,
        detail: dict[str, Any],
    ) -> None:
        try:
            self.emit(event_body(kind, identity, request.body, detail))
        except Exception:
            log.exception(
                "webhook_event_lost", extra={"fields": {"type": kind, "enrollment_id": identity.id}}
            )


def event_body(
    kind: str, identity: EnrollmentIdentity, raw: bytes, detail: dict[str, Any]
) -> bytes:
    event = {
        "id": str(uuid.uuid4()),
        "type": kind,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "enrollment_id": identity.id,
        "device_id": identity.device_id,
        **detail,
        "raw_payload": base64.b64encode(raw).decode("ascii"),
    }
    return json.dumps(event, separators=(",", ":")).encode()
