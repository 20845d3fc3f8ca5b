"""The OpenAPI description of the push routes (blueprint ``web/api/push.py``).

Kept apart from ``openapi.py`` so each feature's description sits in a module of its own; it
is one of ``openapi.FEATURES``. The device is named by its exact
device id here (UDID, or a User Enrollment's EnrollmentID): these routes do not look up serials.
"""

from __future__ import annotations

from typing import Any

from mdmserver.web.api.spec import (
    STR,
    TIME,
    errors,
    json_response,
    path_param,
    ref,
)

_DEVICE_ID = path_param(
    "device_id", "The device id: UDID, or a User Enrollment's EnrollmentID (not a serial)"
)
_NO_CHANNEL = {404: "The device is unknown or has no active enrollment"}

SCHEMAS: dict[str, Any] = {
    "PushRequested": {
        "type": "object",
        "required": ["device_id", "enrollments"],
        "properties": {
            "device_id": STR,
            "enrollments": {
                "type": "array",
                "items": STR,
                "minItems": 1,
                "description": "the active channels (device and user) a push was requested for",
            },
        },
    },
    "PushStatus": {
        "type": ["object", "null"],
        "description": "The last push to one enrollment; null before the first",
        "properties": {
            "last_push_at": TIME,
            "last_outcome": {
                "type": ["string", "null"],
                "description": "delivered, stale_token, retry, certificate_error or rejected",
            },
            "last_reason": {"type": ["string", "null"]},
            "attempts": {"type": ["integer", "null"], "description": "re-pushes so far"},
        },
    },
    "PushSummary": {
        "type": "object",
        "properties": {
            "by_outcome": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "description": "enrollments per last outcome",
            },
            "last_certificate_error": {
                "type": ["object", "null"],
                "properties": {"at": TIME, "reason": {"type": ["string", "null"]}},
            },
            "certificate_errors": {"type": "integer"},
            "outbox_pending": {"type": "integer", "description": "push requests not sent yet"},
            "backend": {"type": "string", "description": "inprocess or rq"},
        },
    },
}

PATHS: dict[str, Any] = {
    "/api/v1/devices/{device_id}/push": {
        "post": {
            "summary": "Wake every active channel of a device now (APNs push, queued)",
            "description": "No body. The push is requested, not sent, when this answers: "
            "GET on the same path shows how it went.",
            "parameters": [_DEVICE_ID],
            "responses": {
                "202": json_response(ref("PushRequested"), "Push requested"),
                **errors(404, why=_NO_CHANNEL),
            },
        },
        "get": {
            "summary": "The last push to each active channel of a device",
            "parameters": [_DEVICE_ID],
            "responses": {
                "200": json_response(
                    {
                        "type": "object",
                        "properties": {
                            "device_id": STR,
                            "enrollments": {
                                "type": "object",
                                "additionalProperties": ref("PushStatus"),
                                "description": "enrollment id -> its last push",
                            },
                        },
                    },
                    "The device's channels",
                ),
                **errors(404, why=_NO_CHANNEL),
            },
        },
    },
    "/api/v1/push/status": {
        "get": {
            "summary": "Push outcomes per enrollment, the latest certificate error, the backlog",
            "responses": {"200": json_response(ref("PushSummary"), "The summary"), **errors()},
        }
    },
}
