"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 description of this API (a test keeps it and
the routes in step). Public: it describes the API, it opens nothing.

The core resources are described here; the other features' routes are described in their own
``openapi_*`` modules, which add them with :func:`add_paths` (imported at the end of this one).
Every route under /api/v1 must be described by hand: there is no generated stand-in.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from mdmserver.service.admin.devices import DEFAULT_LIMIT, MAX_LIMIT

bp = Blueprint("openapi", __name__)


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_WHY = {
    400: "Malformed JSON or a bad field (the message names it)",
    401: "Missing, unknown or revoked API key",
    403: "An API key of another scope",
    404: "Not found (the message names the unknown device, command, token or profile)",
    409: "Conflict (a target that is not enrolled)",
    413: "The body is larger than this server accepts",
    422: "Refused by validation; `problems` lists key paths and reasons",
}


def errors(*codes: int, why: dict[int, str] | None = None) -> dict[str, Any]:
    """The refusals of an operation, always with 401 and 403 (every route but this document
    needs a key); ``why`` words a status for this operation where the generic text is vague."""
    words = _WHY | (why or {})
    return {str(code): json_response(ref("Error"), words[code]) for code in (401, 403, *codes)}


STR = {"type": "string"}
TIME = {"type": ["string", "null"], "format": "date-time"}


def path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": STR}


_DEVICE_ID = {
    "name": "ident",
    "in": "path",
    "required": True,
    "description": "UDID (or User Enrollment EnrollmentID), or serial number",
    "schema": STR,
}
_FILTERS = [
    ("platform", "iOS (includes iPadOS), macOS, tvOS, watchOS or visionOS", STR),
    ("os_version", "exact OS version, e.g. 17.4", STR),
    ("min_os_version", "at least this OS version (numeric comparison)", STR),
    ("enrolled", "true or false", {"type": "boolean"}),
    ("tag", "device tag (repeat for several: all must match)", STR),
    ("last_seen_before", "ISO 8601 time", {"type": "string", "format": "date-time"}),
    ("last_seen_after", "ISO 8601 time", {"type": "string", "format": "date-time"}),
]

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "what is wrong, naming the field"},
            "problems": {"type": "array", "items": ref("Problem")},
        },
    },
    "Problem": {
        "type": "object",
        "description": "One finding: the key path it is about, and what is wrong there",
        "properties": {"path": STR, "message": STR},
    },
    "Filter": {
        "type": "object",
        "properties": {name: schema for name, _, schema in _FILTERS}
        | {"tag": {"oneOf": [STR, {"type": "array", "items": STR}]}},
        "additionalProperties": False,
    },
    "Device": {
        "type": "object",
        "properties": {
            "id": STR,
            "serial_number": {"type": ["string", "null"]},
            "platform": {"type": ["string", "null"]},
            "product_name": {"type": ["string", "null"]},
            "model": {"type": ["string", "null"]},
            "os_version": {"type": ["string", "null"]},
            "enrolled": {"type": "boolean"},
            "tags": {"type": "array", "items": STR},
            "last_seen_at": TIME,
        },
    },
    "DeviceDetail": {
        "allOf": [
            ref("Device"),
            {
                "type": "object",
                "properties": {
                    "enrollments": {"type": "array", "items": ref("Enrollment")},
                    "identity_expires_at": TIME,
                    "inventory": {"type": "object"},
                },
            },
        ]
    },
    "Enrollment": {
        "type": "object",
        "properties": {
            "id": STR,
            "type": STR,
            "channel": {"enum": ["device", "user"]},
            "status": {"enum": ["pending", "active", "checked_out"]},
            "push_token_present": {"type": "boolean"},
            "token_stale": {"type": "boolean"},
            "last_seen_at": TIME,
        },
    },
    "QueueItem": {
        "type": "object",
        "properties": {
            "command_uuid": STR,
            "request_type": STR,
            "enrollment_id": STR,
            "status": {
                "enum": [
                    "queued",
                    "sent",
                    "notnow",
                    "acknowledged",
                    "error",
                    "commandformaterror",
                    "cancelled",
                    "expired",
                ]
            },
            "priority": {"type": "integer"},
            "created_at": TIME,
            "sent_at": TIME,
            "answered_at": TIME,
            "expires_at": TIME,
        },
    },
    "CommandRequest": {
        "type": "object",
        "required": ["command"],
        "description": "Exactly one of targets or filter. In command, <data> values are base64"
        " strings and <date> values ISO 8601 strings.",
        "properties": {
            "targets": {"type": "array", "items": STR, "minItems": 1},
            "filter": ref("Filter"),
            "command": {
                "type": "object",
                "required": ["RequestType"],
                "properties": {"RequestType": STR},
                "additionalProperties": True,
            },
            "priority": {"type": "integer", "minimum": -1000, "maximum": 1000},
            "expires_in": {"type": "integer", "minimum": 1, "description": "seconds"},
        },
    },
    "CommandCreated": {
        "type": "object",
        "properties": {
            "command_uuid": STR,
            "request_type": STR,
            "targets": {
                "type": "object",
                "additionalProperties": STR,
                "description": "device id -> enrollment id",
            },
            "skipped": {"type": "array", "items": STR},
            "warnings": {"type": "array", "items": ref("Problem")},
        },
    },
    "CommandStatus": {
        "type": "object",
        "properties": {
            "command_uuid": STR,
            "request_type": STR,
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "targets": {
                "type": "array",
                "items": {
                    "allOf": [
                        ref("QueueItem"),
                        {
                            "type": "object",
                            "properties": {
                                "device_id": STR,
                                "result": {
                                    "type": ["object", "null"],
                                    "description": "the device's answer; data as base64, dates"
                                    " as ISO 8601",
                                },
                            },
                        },
                    ]
                },
            },
        },
    },
    "Token": {
        "type": "object",
        "properties": {
            "id": STR,
            "prefix": STR,
            "max_uses": {"type": ["integer", "null"]},
            "uses": {"type": "integer"},
            "expires_at": TIME,
            "state": STR,
            "tags": {"type": "array", "items": STR},
        },
    },
}

_PATHS: dict[str, Any] = {
    "/api/v1/devices": {
        "get": {
            "summary": "List devices, filtered, in pages ordered by device id",
            "parameters": [
                {"name": n, "in": "query", "description": d, "schema": s} for n, d, s in _FILTERS
            ]
            + [
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_LIMIT,
                        "default": DEFAULT_LIMIT,
                    },
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "description": "next_cursor of the previous page (opaque)",
                    "schema": STR,
                },
            ],
            "responses": {
                "200": json_response(
                    {
                        "type": "object",
                        "properties": {
                            "devices": {"type": "array", "items": ref("Device")},
                            "next_cursor": {"type": ["string", "null"]},
                        },
                    },
                    "A page of devices; next_cursor is null on the last page",
                ),
                **errors(400),
            },
        }
    },
    "/api/v1/devices/{ident}": {
        "get": {
            "summary": "One device: fields, enrollments, identity expiry, inventory summary",
            "parameters": [_DEVICE_ID],
            "responses": {"200": json_response(ref("DeviceDetail"), "The device"), **errors(404)},
        }
    },
    "/api/v1/devices/{ident}/queue": {
        "get": {
            "summary": "Commands waiting for the device (all=true: with answered ones)",
            "parameters": [
                _DEVICE_ID,
                {"name": "all", "in": "query", "schema": {"type": "boolean"}},
            ],
            "responses": {
                "200": json_response(
                    {
                        "type": "object",
                        "properties": {
                            "device_id": STR,
                            "commands": {"type": "array", "items": ref("QueueItem")},
                        },
                    },
                    "The queue",
                ),
                **errors(404),
            },
        },
        "delete": {
            "summary": "Cancel every pending command of the device",
            "parameters": [_DEVICE_ID],
            "responses": {
                "200": json_response(
                    {
                        "type": "object",
                        "properties": {"device_id": STR, "cancelled": {"type": "integer"}},
                    },
                    "How many were cancelled",
                ),
                **errors(404),
            },
        },
    },
    "/api/v1/commands": {
        "post": {
            "summary": "Validate a command for every target, then queue it (one UUID)",
            "requestBody": {
                "required": True,
                **json_response(ref("CommandRequest"), "The command"),
            },
            "responses": {
                "201": json_response(ref("CommandCreated"), "Queued"),
                **errors(400, 404, 409, 422),
            },
        }
    },
    "/api/v1/commands/{command_uuid}": {
        "get": {
            "summary": "Per-target status and stored result of a command",
            "parameters": [{"name": "command_uuid", "in": "path", "required": True, "schema": STR}],
            "responses": {"200": json_response(ref("CommandStatus"), "The command"), **errors(404)},
        }
    },
    "/api/v1/enrollment-tokens": {
        "get": {
            "summary": "List enrollment tokens (ids and prefixes; never the tokens)",
            "responses": {
                "200": json_response(
                    {
                        "type": "object",
                        "properties": {"tokens": {"type": "array", "items": ref("Token")}},
                    },
                    "The tokens",
                ),
                **errors(),
            },
        },
        "post": {
            "summary": "Create a token; the answer is the only time it is shown",
            "requestBody": {
                "required": True,
                **json_response(
                    {
                        "type": "object",
                        "properties": {
                            "uses": {"type": "integer", "minimum": 1},
                            "expires_in": {"type": "integer", "minimum": 1},
                            "tags": {"type": "array", "items": STR},
                        },
                    },
                    "Limits and tags",
                ),
            },
            "responses": {
                "201": json_response(
                    {"allOf": [ref("Token"), {"properties": {"token": STR}}]}, "Created"
                ),
                **errors(400),
            },
        },
    },
    "/api/v1/enrollment-tokens/{token_id}": {
        "delete": {
            "summary": "Revoke a token",
            "parameters": [{"name": "token_id", "in": "path", "required": True, "schema": STR}],
            "responses": {
                "200": json_response({"type": "object"}, "Revoked"),
                **errors(404),
            },
        }
    },
    "/api/v1/openapi.json": {
        "get": {
            "summary": "This document",
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1 document"}},
        }
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "mdmserver admin API", "version": "1"},
    "security": [{"bearer": []}],
    "components": {
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key (mdmserver api-key create) of scope admin; of"
                " scope trust for /api/v1/trust",
            }
        },
        "schemas": _SCHEMAS,
    },
    "paths": _PATHS,
}


def add_paths(paths: dict[str, Any], schemas: dict[str, Any] | None = None) -> None:
    """Resources added by other features document their routes here; a test checks that the
    document and the routes under /api/v1 list exactly the same (path, method) pairs."""
    for path, operations in paths.items():
        _PATHS.setdefault(path, {}).update(operations)
    _SCHEMAS.update(schemas or {})


@bp.get("/openapi.json")
def document() -> Response:
    return jsonify({**DOCUMENT, "paths": dict(sorted(_PATHS.items()))})


# The features' descriptions add themselves with add_paths when imported; they need the helpers
# above, so they come last.
from mdmserver.web.api import (  # noqa: E402, F401
    openapi_apps,
    openapi_profiles,
    openapi_push,
    openapi_trust,
)
