"""The OpenAPI description of ``/api/v1/declarations`` and a device's declarations and status
items (blueprint ``web/api/declarations.py``).

Statuses are the ones the handlers return: 400 for a malformed body or target, 404 for an
unknown declaration or device, 409 for a change other declarations forbid (deleting a
configuration an activation names, touching a server-managed declaration), 422 when the
declaration does not validate against Apple's schema (``problems`` names each key path).
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

_ID = path_param("identifier", "The declaration's Identifier")
_DEVICE = path_param("ident", "UDID (or User Enrollment EnrollmentID), or serial number")
_NO_DECLARATION = {404: "No declaration with this identifier"}
_NO_DEVICE = {404: "No device with this UDID or serial number"}
_SYNCED = {"type": "integer", "description": "channels sent a DeclarativeManagement sync"}
_ANY: dict[str, Any] = {}

SCHEMAS: dict[str, Any] = {
    "DeclarationPut": {
        "type": "object",
        "required": ["Type"],
        "additionalProperties": False,
        "properties": {
            "Type": {
                "type": "string",
                "description": "e.g. com.apple.configuration.passcode.settings",
            },
            "Payload": {
                "type": "object",
                "description": "the type's keys, as Apple's schema lists them",
            },
        },
    },
    "Declaration": {
        "type": "object",
        "properties": {
            "Identifier": STR,
            "Type": STR,
            "Payload": {"type": "object"},
            "ServerToken": {"type": "string", "description": "SHA-256 of the content"},
            "class": {
                "type": "string",
                "enum": ["activation", "asset", "configuration", "management"],
            },
            "managed_by": {"type": "string", "enum": ["admin", "server", "apps"]},
            "assignments": {"type": "array", "items": STR, "description": "all, or tag:<name>"},
            "created_at": TIME,
            "updated_at": TIME,
        },
    },
    "DeclarationSaved": {
        "allOf": [
            ref("Declaration"),
            {
                "type": "object",
                "properties": {
                    "changed": {"type": "boolean", "description": "false: identical content"},
                    "synced": _SYNCED,
                    "warnings": {"type": "array", "items": ref("Problem")},
                },
            },
        ]
    },
    "DeclarationAssignment": {
        "type": "object",
        "required": ["target"],
        "properties": {"target": {"type": "string", "description": "all, or tag:<name>"}},
    },
    "DeviceDeclarations": {
        "type": "object",
        "properties": {
            "channels": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "enrollment_id": STR,
                        "enabled": {"type": "boolean"},
                        "declarations_token": STR,
                        "declarations": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "identifier": STR,
                                    "type": {"type": ["string", "null"]},
                                    "class": {"type": ["string", "null"]},
                                    "assigned": {"type": "boolean"},
                                    "server_token": {"type": ["string", "null"]},
                                    "device": {
                                        "type": ["object", "null"],
                                        "description": "management.declarations as reported",
                                        "properties": {
                                            "active": {"type": ["boolean", "null"]},
                                            "valid": {"type": ["string", "null"]},
                                            "server_token": {"type": ["string", "null"]},
                                            "current": {"type": "boolean"},
                                            "reasons": {"type": "array"},
                                            "updated_at": TIME,
                                        },
                                    },
                                },
                            },
                        },
                        "not_applicable": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"identifier": STR, "reason": STR},
                            },
                        },
                    },
                },
            }
        },
    },
    "OSUpdateEnforce": {
        "type": "object",
        "required": ["version", "by"],
        "additionalProperties": False,
        "properties": {
            "version": {"type": "string", "description": "TargetOSVersion, e.g. 17.5"},
            "by": {"type": "string", "description": "ISO 8601 deadline (device local time)"},
            "tag": {"type": "string", "description": "only devices with this tag"},
            "platform": {"type": "string", "description": "the compliance rule's platform"},
            "build": {"type": "string", "description": "TargetBuildVersion"},
        },
    },
    "OSUpdateEnforced": {
        "type": "object",
        "properties": {
            "identifier": STR,
            "activation": STR,
            "target": STR,
            "version": STR,
            "by": TIME,
            "synced": _SYNCED,
        },
    },
    "OSUpdateProgress": {
        "type": "object",
        "properties": {
            "identifier": STR,
            "target": STR,
            "version": STR,
            "local_deadline": STR,
            "devices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "device_id": STR,
                        "os_version": {"type": ["string", "null"]},
                        "state": {
                            "type": "string",
                            "description": "updated, pending, the install-state, or"
                            " not_supported (the device's OS does not take the declaration)",
                        },
                        "reason": {"type": ["string", "null"]},
                        "install_state": {"type": ["string", "null"]},
                        "pending_version": {"type": ["object", "null"]},
                        "failure_reason": {"type": ["object", "null"]},
                    },
                },
            },
        },
    },
    "StatusItem": {
        "type": "object",
        "properties": {"item": STR, "value": _ANY, "updated_at": TIME},
    },
    "DeviceStatusItems": {
        "type": "object",
        "properties": {
            "status_items": {
                "type": "array",
                "items": ref("StatusItem"),
                "description": "the device channel's",
            },
            "channels": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "enrollment_id": STR,
                        "status_items": {"type": "array", "items": ref("StatusItem")},
                        "history": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"item": STR, "value": _ANY, "at": TIME},
                            },
                        },
                    },
                },
            },
        },
    },
}


def _body(name: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": ref(name)}},
    }


PATHS: dict[str, Any] = {
    "/api/v1/declarations": {
        "get": {
            "summary": "Every declaration (the server's own included)",
            "responses": {
                "200": json_response(
                    {
                        "type": "object",
                        "properties": {
                            "declarations": {"type": "array", "items": ref("Declaration")}
                        },
                    },
                    "The declarations",
                ),
                **errors(),
            },
        }
    },
    "/api/v1/declarations/{identifier}": {
        "parameters": [_ID],
        "put": {
            "summary": "Create or replace a declaration, validated against Apple's schema",
            "requestBody": _body("DeclarationPut"),
            "responses": {
                "200": json_response(ref("DeclarationSaved"), "Replaced (or unchanged)"),
                "201": json_response(ref("DeclarationSaved"), "Created"),
                **errors(
                    400,
                    413,
                    422,
                    why={422: "Refused by validation (or a server-managed identifier)"},
                ),
            },
        },
        "get": {
            "summary": "One declaration",
            "responses": {
                "200": json_response(ref("Declaration"), "The declaration"),
                **errors(404, why=_NO_DECLARATION),
            },
        },
        "delete": {
            "summary": "Delete a declaration; devices that had it are synced",
            "responses": {
                "200": json_response(
                    {"type": "object", "properties": {"deleted": STR, "synced": _SYNCED}},
                    "Deleted",
                ),
                **errors(
                    404,
                    409,
                    why={
                        **_NO_DECLARATION,
                        409: "Other declarations need it, or it is the server's",
                    },
                ),
            },
        },
    },
    "/api/v1/declarations/{identifier}/assignments": {
        "parameters": [_ID],
        "post": {
            "summary": "Assign to all devices or a tag; devices whose set changes are synced",
            "requestBody": _body("DeclarationAssignment"),
            "responses": {
                "200": json_response(
                    {
                        "type": "object",
                        "properties": {"assigned": {"const": False}, "synced": _SYNCED},
                    },
                    "Already assigned",
                ),
                "201": json_response(
                    {
                        "type": "object",
                        "properties": {"assigned": {"const": True}, "synced": _SYNCED},
                    },
                    "Assigned",
                ),
                **errors(400, 404, 413, why=_NO_DECLARATION),
            },
        },
    },
    "/api/v1/declarations/{identifier}/assignments/{target}": {
        "parameters": [_ID, path_param("target", "all, or tag:<name>")],
        "delete": {
            "summary": "Remove an assignment; devices whose set changes are synced",
            "responses": {
                "200": json_response(
                    {
                        "type": "object",
                        "properties": {"unassigned": {"const": True}, "synced": _SYNCED},
                    },
                    "Unassigned",
                ),
                **errors(400, 404, why={404: "No such declaration, or not assigned so"}),
            },
        },
    },
    "/api/v1/declarations/{identifier}/data": {
        "parameters": [_ID],
        "put": {
            "summary": "Host the body as an asset's data, served only to its devices",
            "parameters": [
                {
                    "name": "type",
                    "in": "query",
                    "description": "com.apple.asset.data (default) or"
                    " com.apple.asset.credential.certificate",
                    "schema": STR,
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
            },
            "responses": {
                "200": json_response(ref("DeclarationSaved"), "Replaced"),
                "201": json_response(ref("DeclarationSaved"), "Created"),
                **errors(
                    400,
                    409,
                    413,
                    422,
                    why={409: "No MDM_SERVER_URL, or the identifier is the server's"},
                ),
            },
        },
    },
    "/api/v1/os-updates": {
        "post": {
            "summary": "Enforce an OS update by a deadline (DDM) and require it in compliance",
            "requestBody": _body("OSUpdateEnforce"),
            "responses": {
                "201": json_response(ref("OSUpdateEnforced"), "Declarations stored and assigned"),
                **errors(400, 413, 422, why={422: "No targeted device's OS takes it"}),
            },
        },
        "get": {
            "summary": "Each targeted device's progress, from its status channel",
            "parameters": [
                {
                    "name": "target",
                    "in": "query",
                    "description": "all (default) or tag:<name>",
                    "schema": STR,
                }
            ],
            "responses": {
                "200": json_response(ref("OSUpdateProgress"), "Per device"),
                **errors(400, 404, why={404: "No OS update is enforced for this target"}),
            },
        },
    },
    "/api/v1/devices/{ident}/declarations": {
        "parameters": [_DEVICE],
        "get": {
            "summary": "Each channel's declarations and their state on the device",
            "responses": {
                "200": json_response(ref("DeviceDeclarations"), "Per channel"),
                **errors(404, why=_NO_DEVICE),
            },
        },
    },
    "/api/v1/devices/{ident}/status-items": {
        "parameters": [_DEVICE],
        "get": {
            "summary": "The latest value of every status item the device reported",
            "responses": {
                "200": json_response(ref("DeviceStatusItems"), "Per channel, with history"),
                **errors(404, why=_NO_DEVICE),
            },
        },
    },
}


def _per_operation(paths: dict[str, Any]) -> dict[str, Any]:
    """Each operation lists its own path parameters (as the other modules' do)."""
    out = {}
    for path, item in paths.items():
        shared = item.get("parameters", [])
        out[path] = {
            method: {**operation, "parameters": shared + operation.get("parameters", [])}
            for method, operation in item.items()
            if method != "parameters"
        }
    return out


PATHS = _per_operation(PATHS)
