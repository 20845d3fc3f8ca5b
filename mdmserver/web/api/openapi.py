"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 description of this API (a test keeps it and
the routes in step). Public: it describes the API, it opens nothing."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify

from mdmserver.service.admin.devices import DEFAULT_LIMIT, MAX_LIMIT

bp = Blueprint("openapi", __name__)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    why = {
        400: "Malformed JSON or a bad field (the message names it)",
        401: "Missing, unknown or revoked API key",
        403: "An API key of another scope",
        404: "Unknown device, command or token (named in the message)",
        409: "Conflict (a target that is not enrolled)",
        422: "The command is refused by the catalog; `problems` lists key paths and reasons",
    }
    return {str(code): _json(_ref("Error"), why[code]) for code in (401, 403, *codes)}


_STR = {"type": "string"}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_DEVICE_ID = {
    "name": "ident",
    "in": "path",
    "required": True,
    "description": "UDID (or User Enrollment EnrollmentID), or serial number",
    "schema": _STR,
}
_FILTERS = [
    ("platform", "iOS (includes iPadOS), macOS, tvOS, watchOS or visionOS", _STR),
    ("os_version", "exact OS version, e.g. 17.4", _STR),
    ("min_os_version", "at least this OS version (numeric comparison)", _STR),
    ("enrolled", "true or false", {"type": "boolean"}),
    ("tag", "device tag (repeat for several: all must match)", _STR),
    ("last_seen_before", "ISO 8601 time", {"type": "string", "format": "date-time"}),
    ("last_seen_after", "ISO 8601 time", {"type": "string", "format": "date-time"}),
]

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "what is wrong, naming the field"},
            "problems": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"path": _STR, "message": _STR},
                },
            },
        },
    },
    "Filter": {
        "type": "object",
        "properties": {name: schema for name, _, schema in _FILTERS}
        | {"tag": {"oneOf": [_STR, {"type": "array", "items": _STR}]}},
        "additionalProperties": False,
    },
    "Device": {
        "type": "object",
        "properties": {
            "id": _STR,
            "serial_number": {"type": ["string", "null"]},
            "platform": {"type": ["string", "null"]},
            "product_name": {"type": ["string", "null"]},
            "model": {"type": ["string", "null"]},
            "os_version": {"type": ["string", "null"]},
            "enrolled": {"type": "boolean"},
            "tags": {"type": "array", "items": _STR},
            "last_seen_at": _TIME,
        },
    },
    "DeviceDetail": {
        "allOf": [
            _ref("Device"),
            {
                "type": "object",
                "properties": {
                    "enrollments": {"type": "array", "items": _ref("Enrollment")},
                    "identity_expires_at": _TIME,
                    "inventory": {"type": "object"},
                },
            },
        ]
    },
    "Enrollment": {
        "type": "object",
        "properties": {
            "id": _STR,
            "type": _STR,
            "channel": {"enum": ["device", "user"]},
            "status": {"enum": ["pending", "active", "checked_out"]},
            "push_token_present": {"type": "boolean"},
            "token_stale": {"type": "boolean"},
            "last_seen_at": _TIME,
        },
    },
    "QueueItem": {
        "type": "object",
        "properties": {
            "command_uuid": _STR,
            "request_type": _STR,
            "enrollment_id": _STR,
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
            "created_at": _TIME,
            "sent_at": _TIME,
            "answered_at": _TIME,
            "expires_at": _TIME,
        },
    },
    "CommandRequest": {
        "type": "object",
        "required": ["command"],
        "description": "Exactly one of targets or filter. In command, <data> values are base64"
        " strings and <date> values ISO 8601 strings.",
        "properties": {
            "targets": {"type": "array", "items": _STR, "minItems": 1},
            "filter": _ref("Filter"),
            "command": {
                "type": "object",
                "required": ["RequestType"],
                "properties": {"RequestType": _STR},
                "additionalProperties": True,
            },
            "priority": {"type": "integer", "minimum": -1000, "maximum": 1000},
            "expires_in": {"type": "integer", "minimum": 1, "description": "seconds"},
        },
    },
    "CommandCreated": {
        "type": "object",
        "properties": {
            "command_uuid": _STR,
            "request_type": _STR,
            "targets": {
                "type": "object",
                "additionalProperties": _STR,
                "description": "device id -> enrollment id",
            },
            "skipped": {"type": "array", "items": _STR},
            "warnings": {"type": "array", "items": {"type": "object"}},
        },
    },
    "CommandStatus": {
        "type": "object",
        "properties": {
            "command_uuid": _STR,
            "request_type": _STR,
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "targets": {
                "type": "array",
                "items": {
                    "allOf": [
                        _ref("QueueItem"),
                        {
                            "type": "object",
                            "properties": {
                                "device_id": _STR,
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
            "id": _STR,
            "prefix": _STR,
            "max_uses": {"type": ["integer", "null"]},
            "uses": {"type": "integer"},
            "expires_at": _TIME,
            "state": _STR,
            "tags": {"type": "array", "items": _STR},
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
                    "schema": _STR,
                },
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "devices": {"type": "array", "items": _ref("Device")},
                            "next_cursor": {"type": ["string", "null"]},
                        },
                    },
                    "A page of devices; next_cursor is null on the last page",
                ),
                **_errors(400),
            },
        }
    },
    "/api/v1/devices/{ident}": {
        "get": {
            "summary": "One device: fields, enrollments, identity expiry, inventory summary",
            "parameters": [_DEVICE_ID],
            "responses": {"200": _json(_ref("DeviceDetail"), "The device"), **_errors(404)},
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
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "device_id": _STR,
                            "commands": {"type": "array", "items": _ref("QueueItem")},
                        },
                    },
                    "The queue",
                ),
                **_errors(404),
            },
        },
        "delete": {
            "summary": "Cancel every pending command of the device",
            "parameters": [_DEVICE_ID],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {"device_id": _STR, "cancelled": {"type": "integer"}},
                    },
                    "How many were cancelled",
                ),
                **_errors(404),
            },
        },
    },
    "/api/v1/commands": {
        "post": {
            "summary": "Validate a command for every target, then queue it (one UUID)",
            "requestBody": {"required": True, **_json(_ref("CommandRequest"), "The command")},
            "responses": {
                "201": _json(_ref("CommandCreated"), "Queued"),
                **_errors(400, 404, 409, 422),
            },
        }
    },
    "/api/v1/commands/{command_uuid}": {
        "get": {
            "summary": "Per-target status and stored result of a command",
            "parameters": [
                {"name": "command_uuid", "in": "path", "required": True, "schema": _STR}
            ],
            "responses": {"200": _json(_ref("CommandStatus"), "The command"), **_errors(404)},
        }
    },
    "/api/v1/enrollment-tokens": {
        "get": {
            "summary": "List enrollment tokens (ids and prefixes; never the tokens)",
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {"tokens": {"type": "array", "items": _ref("Token")}},
                    },
                    "The tokens",
                ),
                **_errors(),
            },
        },
        "post": {
            "summary": "Create a token; the answer is the only time it is shown",
            "requestBody": {
                "required": True,
                **_json(
                    {
                        "type": "object",
                        "properties": {
                            "uses": {"type": "integer", "minimum": 1},
                            "expires_in": {"type": "integer", "minimum": 1},
                            "tags": {"type": "array", "items": _STR},
                        },
                    },
                    "Limits and tags",
                ),
            },
            "responses": {
                "201": _json(
                    {"allOf": [_ref("Token"), {"properties": {"token": _STR}}]}, "Created"
                ),
                **_errors(400),
            },
        },
    },
    "/api/v1/enrollment-tokens/{token_id}": {
        "delete": {
            "summary": "Revoke a token",
            "parameters": [{"name": "token_id", "in": "path", "required": True, "schema": _STR}],
            "responses": {
                "200": _json({"type": "object"}, "Revoked"),
                **_errors(404),
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
                "description": "An API key of scope admin (mdmserver api-key create)",
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


_PARAM = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")
_METHODS = ("get", "post", "put", "patch", "delete")


def _placeholders(app: Flask) -> dict[str, Any]:
    """Routes under /api/v1 no one documented yet: listed (so the document is complete) with
    the handler's docstring and ``x-undocumented: true`` until their feature calls add_paths."""
    found: dict[str, Any] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = _PARAM.sub(r"{\1}", rule.rule)
        view = app.view_functions.get(rule.endpoint)
        summary = ((view.__doc__ if view else None) or rule.endpoint).strip().splitlines()[0]
        for method in sorted(m.lower() for m in rule.methods or ()):
            if method in _METHODS and method not in _PATHS.get(path, {}):
                found.setdefault(path, {})[method] = {
                    "summary": summary,
                    "x-undocumented": True,
                    "parameters": [
                        {"name": name, "in": "path", "required": True, "schema": _STR}
                        for name in rule.arguments
                    ],
                    "responses": {"default": {"description": "not documented yet"}},
                }
    return found


@bp.get("/openapi.json")
def document() -> Response:
    extra = _placeholders(current_app)
    paths = {path: {**_PATHS.get(path, {}), **extra.get(path, {})} for path in {*_PATHS, *extra}}
    return jsonify({**DOCUMENT, "paths": dict(sorted(paths.items()))})
