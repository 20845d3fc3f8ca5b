"""The OpenAPI description of the core admin resources: devices, queues, commands and
enrollment tokens (web/api/devices.py, queue.py, commands.py, enrollment_tokens.py). One of
``openapi.FEATURES``; the shared vocabulary is web/api/spec.py.
"""

from __future__ import annotations

from typing import Any

from mdmserver.admin.devices import COMPLIANCE_STATES, DEFAULT_LIMIT, MAX_LIMIT
from mdmserver.admin.views import INVENTORY_PARTS
from mdmserver.web.api.spec import STR, TIME, errors, json_response, ref

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
    ("compliance", "compliant, noncompliant or unknown", {"enum": list(COMPLIANCE_STATES)}),
    ("supervised", "true or false, as the device's inventory reports it", {"type": "boolean"}),
    ("passcode_compliant", "true or false, from the device's SecurityInfo", {"type": "boolean"}),
    ("filevault", "true or false, from the Mac's SecurityInfo", {"type": "boolean"}),
    ("search", "part of the device name, serial, UDID or user name", STR),
]

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "what is wrong, naming the field"},
            "problems": {"type": "array", "items": ref("Problem")},
            "candidates": {
                "type": "array",
                "items": STR,
                "description": "409: the devices an ambiguous serial number names",
            },
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
            "identity": {
                "type": "string",
                "enum": ["attested", "token"],
                "description": "attested: the identity was issued over the air for the UDID "
                "the device's Apple identity vouched for; token: the UDID is the device's claim",
            },
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
    "Inventory": {
        "type": "object",
        "description": "The normalised inventory, part by part; each part's reported_at is when "
        "the device last answered the commands that fill it (null: never)",
        "required": ["device_id", *INVENTORY_PARTS],
        "properties": {
            "device_id": STR,
            **{
                part: {
                    "type": "object",
                    "properties": {"reported_at": TIME},
                    "required": [*names, "reported_at"],
                }
                for part, (names, _) in INVENTORY_PARTS.items()
            },
            "requested_at": TIME,
            "updated_at": TIME,
        },
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
            "allow_unknown_keys": {
                "type": "boolean",
                "default": False,
                "description": "Send keys Apple's schema does not know (refused with 422"
                " otherwise: usually a misspelling).",
            },
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
            "ota": {"type": "boolean", "description": "its URL answers Apple's profile service"},
            "require_ota": {"type": "boolean", "description": "the plain profile is refused"},
        },
    },
}

PATHS: dict[str, Any] = {
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
            "responses": {
                "200": json_response(ref("DeviceDetail"), "The device"),
                **errors(404, 409),
            },
        }
    },
    "/api/v1/devices/{ident}/inventory": {
        "get": {
            "summary": "One device's normalised inventory: hardware, OS, security, apps, ...",
            "parameters": [_DEVICE_ID],
            "responses": {"200": json_response(ref("Inventory"), "The inventory"), **errors(404)},
        }
    },
    "/api/v1/devices/{ident}/allow-reenroll": {
        "post": {
            "summary": "Let one new identity take over the device's active enrollment, once,"
            " within a window (the re-enrollment rule otherwise refuses it)",
            "parameters": [_DEVICE_ID],
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "for": {
                                    "type": "string",
                                    "description": "window such as 24h, 30m or 2d"
                                    " (default 24h, at most 30d)",
                                }
                            },
                            "additionalProperties": False,
                        }
                    }
                },
            },
            "responses": {
                "200": json_response(
                    {
                        "type": "object",
                        "required": ["device_id", "allowed_until"],
                        "properties": {
                            "device_id": STR,
                            "allowed_until": {"type": "string", "format": "date-time"},
                        },
                    },
                    "The allowance, until it is used or expires",
                ),
                **errors(400, 404),
            },
        }
    },
    "/api/v1/devices/{ident}/revoke": {
        "post": {
            "summary": "Revoke every identity of the device and end its enrollment: the trust"
            " answer is managed: false at once, and the serials are in GET /scep/crl",
            "parameters": [_DEVICE_ID],
            "responses": {
                "200": json_response(
                    {
                        "type": "object",
                        "required": ["device_id", "revoked_serials"],
                        "properties": {
                            "device_id": STR,
                            "revoked_serials": {
                                "type": "array",
                                "items": STR,
                                "description": "hex serials of the identities our CA issued",
                            },
                        },
                    },
                    "What was revoked",
                ),
                **errors(404),
            },
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
                **errors(404, 409),
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
                **errors(404, 409),
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
                            "ota": {"type": "boolean", "default": False},
                            "require_ota": {"type": "boolean", "default": False},
                        },
                    },
                    "Limits, tags and over-the-air enrollment",
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
}
