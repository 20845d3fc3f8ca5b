"""The OpenAPI description of ``/api/v1/profiles`` (blueprint ``web/api/profiles.py``).

Kept apart from ``openapi.py`` so each feature's description sits in a module of its own; it
is one of ``openapi.FEATURES``. Statuses are the ones the
handlers return: 400 for a malformed body or field (``BadRequest``, or ``ValueError`` such as a
bad assignment target), 404 for an unknown profile, 422 when the profile does not build or
validate (``problems`` names each key path), 413 for a body over the server's limit. A change
is kept even when devices cannot be sent the profile yet (no profile signer): its answer's
``warnings`` say so.
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

_STRINGS = {"type": "array", "items": STR}
_KEY = path_param("key", "The profile's name or id")
_DEVICE = {
    "name": "device",
    "in": "query",
    "description": "Only this device (its UDID / enrollment id)",
    "schema": STR,
}
_FLAG = {
    "type": "string",
    "description": "1, true, yes or on (any case) for true; anything else is false",
}
_NO_PROFILE = {404: "No profile with this name or id"}
_BAD_TARGET = "The body is not an object with a string target, or the target is not valid"
_WARNINGS = {
    "type": "array",
    "items": ref("Problem"),
    "description": "findings that did not stop the change: about the profile, or (path "
    "devices) devices it could not be sent to yet, as when there is no profile signer",
}

SCHEMAS: dict[str, Any] = {
    "Profile": {
        "type": "object",
        "properties": {
            "id": STR,
            "name": STR,
            "identifier": {"type": "string", "description": "PayloadIdentifier"},
            "payload_uuid": STR,
            "revision": {"type": "integer"},
            "source": {"type": "string", "description": "the template's name, or upload"},
            "payload_types": _STRINGS,
            "encrypt": {"type": "boolean"},
            "per_device": {
                "type": "boolean",
                "description": "the content uses device values filled in per device",
            },
            "assignments": {
                "type": "array",
                "items": STR,
                "description": "all, or tag:<name>",
            },
            "created_at": TIME,
            "updated_at": TIME,
            "deleted_at": TIME,
        },
    },
    "ProfileSaved": {
        "allOf": [
            ref("Profile"),
            {
                "type": "object",
                "properties": {"warnings": _WARNINGS},
            },
        ]
    },
    "ProfileCreate": {
        "type": "object",
        "required": ["name", "template"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 128},
            "template": {"type": "string", "description": "a name from /profiles/templates"},
            "variables": {
                "type": "object",
                "description": "the template's variables by name",
                "additionalProperties": True,
            },
            "identifier": {
                "type": "string",
                "description": "PayloadIdentifier (default com.mdmserver.profile.<name>)",
            },
            "scope": {"type": "string", "description": "PayloadScope (default System)"},
            "encrypt": {
                "type": "boolean",
                "description": "encrypt to each device (default: the template's choice)",
            },
            "replace": {
                "type": "boolean",
                "description": "true updates an existing profile of this name",
            },
        },
    },
    "ProfileState": {
        "type": "object",
        "properties": {
            "enrollment_id": STR,
            "identifier": STR,
            "status": {
                "type": "string",
                "description": "pending, installed, removed, failed, or stale (its command"
                " expired or was cleared; the next reconcile sends it again)",
            },
            "action": {"type": ["string", "null"], "description": "install or remove"},
            "installed_uuid": {"type": ["string", "null"]},
            "command_uuid": {"type": ["string", "null"]},
            "error": {
                "type": ["object", "null"],
                "description": "the device's error answer (with its ErrorChain) when failed",
            },
            "updated_at": TIME,
        },
    },
    "ProfileTemplate": {
        "type": "object",
        "properties": {
            "name": STR,
            "display_name": STR,
            "description": STR,
            "platforms": _STRINGS,
            "encrypt": {"type": "boolean"},
            "variables": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": STR,
                        "type": {
                            "enum": ["string", "integer", "boolean", "data", "certificate", "array"]
                        },
                        "required": {"type": "boolean"},
                        "default": {"description": "null for secrets, data and certificates"},
                        "description": STR,
                    },
                },
            },
        },
    },
}


def _list_of(name: str, items: dict[str, Any], description: str) -> dict[str, Any]:
    """A 200 answer ``{name: [items]}``, the shape of every list this blueprint returns."""
    return json_response(
        {"type": "object", "properties": {name: {"type": "array", "items": items}}},
        description,
    )


def _one(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """A JSON object with one field and the warnings, the answer to deletes, assigns, retries."""
    return json_response(
        {
            "type": "object",
            "required": [name, "warnings"],
            "properties": {name: schema, "warnings": _WARNINGS},
        },
        description,
    )


PATHS: dict[str, Any] = {
    "/api/v1/profiles/templates": {
        "get": {
            "summary": "The templates profiles can be made from, and their variables",
            "responses": {
                "200": _list_of("templates", ref("ProfileTemplate"), "The templates"),
                **errors(),
            },
        }
    },
    "/api/v1/profiles": {
        "get": {
            "summary": "List managed profiles with their assignments",
            "responses": {
                "200": _list_of("profiles", ref("Profile"), "The profiles"),
                **errors(),
            },
        },
        "post": {
            "summary": "Create (or, with replace, update) a profile from a template",
            "requestBody": {
                "required": True,
                **json_response(ref("ProfileCreate"), "The template and its values"),
            },
            "responses": {
                "201": json_response(ref("ProfileSaved"), "Stored"),
                **errors(400, 413, 422),
            },
        },
    },
    "/api/v1/profiles/upload": {
        "post": {
            "summary": "Store a custom .mobileconfig (signed or not), validated like a template",
            "parameters": [
                {"name": "name", "in": "query", "required": True, "schema": STR},
                {"name": "identifier", "in": "query", "schema": STR},
                {"name": "encrypt", "in": "query", "schema": _FLAG},
                {"name": "replace", "in": "query", "schema": _FLAG},
            ],
            "requestBody": {
                "required": True,
                "description": "The file: an XML plist, or CMS SignedData (DER or PEM)",
                "content": {
                    media: {"schema": {"type": "string", "format": "binary"}}
                    for media in ("application/x-apple-aspen-config", "application/octet-stream")
                },
            },
            "responses": {
                "201": json_response(ref("ProfileSaved"), "Stored"),
                **errors(
                    400, 413, 422, why={400: "The name query parameter or the body is missing"}
                ),
            },
        }
    },
    "/api/v1/profiles/status": {
        "get": {
            "summary": "Every device's state for every profile",
            "parameters": [_DEVICE],
            "responses": {
                "200": _list_of("status", ref("ProfileState"), "The states"),
                **errors(),
            },
        }
    },
    "/api/v1/profiles/{key}": {
        "get": {
            "summary": "One profile",
            "parameters": [_KEY],
            "responses": {
                "200": json_response(ref("Profile"), "The profile"),
                **errors(404, why=_NO_PROFILE),
            },
        },
        "delete": {
            "summary": "Delete a profile; devices that have it are told to remove it",
            "parameters": [_KEY],
            "responses": {
                "200": _one("deleted", {"type": "string", "description": "its id"}, "Deleted"),
                **errors(404, why=_NO_PROFILE),
            },
        },
    },
    "/api/v1/profiles/{key}/content": {
        "get": {
            "summary": "The built, unsigned XML (as stored; device values not filled in)",
            "parameters": [_KEY],
            "responses": {
                "200": {
                    "description": "The profile's plist",
                    "content": {"application/x-plist": {"schema": STR}},
                },
                **errors(404, why=_NO_PROFILE),
            },
        }
    },
    "/api/v1/profiles/{key}/assignments": {
        "post": {
            "summary": "Assign a profile to all devices or to a tag",
            "parameters": [_KEY],
            "requestBody": {
                "required": True,
                **json_response(
                    {
                        "type": "object",
                        "required": ["target"],
                        "properties": {
                            "target": {
                                "type": "string",
                                "description": "all, or tag:<name> (a bare name is a tag)",
                            }
                        },
                    },
                    "The target",
                ),
            },
            "responses": {
                "201": _one("assigned", {"const": True}, "Assigned"),
                "200": _one("assigned", {"const": False}, "It was assigned already"),
                **errors(400, 404, why={400: _BAD_TARGET, **_NO_PROFILE}),
            },
        }
    },
    "/api/v1/profiles/{key}/assignments/{target}": {
        "delete": {
            "summary": "Remove an assignment; devices no longer given the profile remove it",
            "parameters": [
                _KEY,
                path_param("target", "all, or tag:<name> (may contain slashes)"),
            ],
            "responses": {
                "200": _one("unassigned", {"const": True}, "Removed"),
                **errors(
                    400,
                    404,
                    why={
                        400: "The target is not all or tag:<name>",
                        404: "No such profile, or it is not assigned to this target",
                    },
                ),
            },
        }
    },
    "/api/v1/profiles/{key}/status": {
        "get": {
            "summary": "Each device's state for one profile",
            "parameters": [_KEY, _DEVICE],
            "responses": {
                "200": _list_of("status", ref("ProfileState"), "The states"),
                **errors(404, why=_NO_PROFILE),
            },
        }
    },
    "/api/v1/profiles/{key}/retry": {
        "post": {
            "summary": "Send a profile again to the devices where it failed, and sync every"
            " device (sending what was held back, e.g. before the signer existed)",
            "parameters": [_KEY],
            "responses": {
                "200": _one(
                    "retried",
                    {"type": "integer", "description": "how many devices"},
                    "Retried",
                ),
                **errors(404, why=_NO_PROFILE),
            },
        }
    },
}
