"""The OpenAPI description of the apps routes (blueprint ``web/api/apps.py``)."""

from __future__ import annotations

from typing import Any

from mdmserver.web.api.spec import STR, errors, json_response, path_param, ref

_APP = path_param("key", "The app's id or name")
_EVENT = path_param("event_id", "Apple's eventId")
_OBJECT = {"type": "object"}
_SERIALS = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["serials"],
                "properties": {"serials": {"type": "array", "items": STR, "maxItems": 1000}},
            }
        }
    },
}
_APPLE = {
    409: "No Apps and Books content token is installed",
    422: "Not an App Store app, or Apple refused (the message words Apple's error number)",
    429: "Apple rate-limited the request for longer than the server waits",
    502: "Apple's service could not be reached",
}
_WHY_APPLE = _APPLE

SCHEMAS: dict[str, Any] = {
    "NewApp": {
        "type": "object",
        "required": ["name", "kind", "bundle_id"],
        "properties": {
            "name": STR,
            "kind": {"enum": ["app_store", "ios_inhouse", "macos_pkg"]},
            "bundle_id": STR,
            "adam_id": {**STR, "description": "App Store apps: the iTunes Store ID"},
            "version": STR,
            "manifest_url": {**STR, "description": "in-house apps and packages: https URL"},
        },
        "additionalProperties": False,
    },
    "AppAssignment": {
        "type": "object",
        "required": ["target"],
        "properties": {
            "target": {**STR, "description": "all, or tag:<device tag>"},
            "behaviour": {"enum": ["required", "available"], "default": "required"},
            "management_flags": {
                "enum": [0, 1, 4, 5],
                "default": 1,
                "description": "ManagementFlags of the install command (Apple's rangelist): "
                "0 none (the app stays when MDM is removed), 1 remove the app with the MDM "
                "profile, 4 prevent backup of its data, 5 both; macOS packages: 0 or 1. Left "
                "out of the command on devices Apple's schema says do not take it (macOS before "
                "11.0, macOS User Enrollment)",
            },
            "configuration": {
                "type": ["object", "null"],
                "description": "The managed app configuration: sent as Configuration with the "
                "install, and as a Settings ApplicationConfiguration item when it changes for "
                "an installed app. Must be property-list serialisable (no null), at most "
                "64 KiB; an assignment with one is delivered by command, never by DDM "
                "(app.managed does not carry one)",
            },
        },
        "additionalProperties": False,
    },
    "AppDeviceState": {
        "type": "object",
        "properties": {
            "device_id": STR,
            "app_id": STR,
            "status": {
                "enum": [
                    "pending",
                    "installing",
                    "installed",
                    "failed",
                    "needs_license",
                    "removing",
                ]
            },
            "channel": {
                "enum": ["command", "ddm"],
                "description": "command: InstallApplication / InstallEnterpriseApplication / "
                "RemoveApplication; ddm: an app.managed declaration, state from the "
                "app.managed.list status item",
            },
            "installed_version": {"type": ["string", "null"]},
            "error": {"type": ["object", "null"], "description": "ErrorChain or DDM reasons"},
            "attempts": {"type": "integer"},
            "retry_at": {"type": ["string", "null"]},
            "configuration": {
                "type": ["object", "null"],
                "description": "The managed app configuration's Settings command "
                "(ApplicationConfiguration), once one was sent: sent (unanswered), applied, or "
                "failed with the device's ErrorChain (an Error answer, or an item of its "
                "Settings results with Status Error); a failed one is sent again at retry_at",
                "properties": {
                    "status": {"enum": ["sent", "applied", "failed"]},
                    "command_uuid": STR,
                    "error": {"type": ["object", "null"]},
                    "attempts": {"type": "integer"},
                    "retry_at": {"type": ["string", "null"]},
                    "updated_at": {"type": ["string", "null"]},
                },
            },
            "updated_at": STR,
        },
    },
    "AppRollout": {
        "type": ["object", "null"],
        "description": "A required assignment's roll-out: every device it targets that gets "
        "the app by command has the install queued (and is pushed) at once, DDM devices "
        "excepted; null for an available assignment. scheduled: true when it runs as a "
        "background job (the web server, or a worker on Redis): follow it in "
        "GET /api/v1/apps/{key}/devices; otherwise the devices queued, by platform",
        "properties": {
            "scheduled": {"type": "boolean"},
            "backend": {"enum": ["inprocess", "rq"]},
            "devices": {"type": "integer"},
            "queued": {"type": "object", "additionalProperties": {"type": "integer"}},
            "refused": {
                "type": "object",
                "description": "platform -> why Apple's schema refused the command there "
                "(those devices' own reconciliation records it)",
            },
        },
    },
    "AppAssigned": {
        "allOf": [
            ref("App"),
            {"type": "object", "properties": {"rollout": ref("AppRollout")}},
        ]
    },
    "VppTokenUpload": {
        "type": "object",
        "required": ["token"],
        "properties": {"token": {**STR, "description": "the .vpptoken file's text"}},
        "additionalProperties": False,
    },
    "App": {
        "type": "object",
        "required": ["id", "name", "kind", "bundle_id", "assignments"],
        "properties": {
            "id": STR,
            "name": STR,
            "kind": {"enum": ["app_store", "ios_inhouse", "macos_pkg"]},
            "bundle_id": STR,
            "adam_id": {"type": ["string", "null"]},
            "version": {"type": ["string", "null"]},
            "file": {"type": ["object", "null"]},
            "download_url": {"type": ["string", "null"]},
            "manifest_url": {"type": ["string", "null"]},
            "manifest": {"type": ["object", "null"], "description": "Apple's manifest format"},
            "assignments": {"type": "array", "items": _OBJECT},
            "created_at": STR,
            "updated_at": STR,
        },
    },
    "VppEvent": {
        "type": "object",
        "required": ["event_id", "status"],
        "properties": {
            "event_id": STR,
            "event_type": STR,
            "status": {"enum": ["PENDING", "COMPLETE", "FAILED"]},
            "failures": {"type": "array", "items": _OBJECT},
        },
    },
    "VppToken": {
        "type": "object",
        "required": ["installed", "warnings"],
        "properties": {
            "installed": {"type": "boolean"},
            "org_name": STR,
            "expires_at": STR,
            "days_left": {"type": "integer"},
            "warnings": {"type": "array", "items": STR},
        },
    },
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_EVENT_ANSWERS = {
    "200": json_response(ref("VppEvent"), "The event finished (COMPLETE or FAILED)"),
    "202": json_response(ref("VppEvent"), "Still PENDING at Apple: follow it later"),
}

PATHS: dict[str, Any] = {
    "/api/v1/apps": {
        "get": {
            "summary": "The app catalog",
            "responses": {
                "200": json_response(
                    {
                        "type": "object",
                        "properties": {"apps": {"type": "array", "items": ref("App")}},
                    },
                    "Every app",
                ),
                **errors(),
            },
        },
        "post": {
            "summary": "Add an App Store app (adam_id) or an app referenced by manifest_url",
            "requestBody": _body(ref("NewApp")),
            "responses": {
                "201": json_response(ref("App"), "Created"),
                **errors(400, 409, 413, why={409: "An app with this name exists"}),
            },
        },
    },
    "/api/v1/apps/upload": {
        "post": {
            "summary": "Upload an in-house .ipa or a signed distribution .pkg",
            "parameters": [
                {"name": n, "in": "query", "required": n in ("kind", "name"), "schema": STR}
                for n in ("kind", "name", "bundle_id", "version", "download_url")
            ],
            "requestBody": {
                "required": True,
                "content": {"application/octet-stream": {"schema": {"type": "string"}}},
            },
            "responses": {
                "201": json_response(ref("App"), "Stored, with its manifest"),
                **errors(
                    400, 409, 413, 422, why={422: "The file is not a valid .ipa or signed .pkg"}
                ),
            },
        },
    },
    "/api/v1/apps/{key}": {
        "get": {
            "summary": "One app",
            "parameters": [_APP],
            "responses": {"200": json_response(ref("App"), "The app"), **errors(404)},
        },
        "delete": {
            "summary": "Remove an unassigned app and its stored file",
            "parameters": [_APP],
            "responses": {
                "200": json_response(_OBJECT, "Deleted"),
                **errors(404, 409, why={409: "The app is still assigned"}),
            },
        },
    },
    "/api/v1/apps/{key}/assignments": {
        "post": {
            "summary": "Assign to all devices or a tag, required or available",
            "parameters": [_APP],
            "requestBody": _body(ref("AppAssignment")),
            "responses": {
                "200": json_response(ref("AppAssigned"), "Assigned (and the roll-out)"),
                **errors(400, 404, 413),
            },
        },
    },
    "/api/v1/apps/{key}/assignments/{target}": {
        "delete": {
            "summary": "Remove one assignment",
            "parameters": [_APP, path_param("target", "all, or tag:<tag>")],
            "responses": {"200": json_response(ref("App"), "Unassigned"), **errors(400, 404)},
        },
    },
    "/api/v1/apps/{key}/devices": {
        "get": {
            "summary": "Per-device state of an app (pending, installing, installed, failed, "
            "needs_license, removing) and its channel (command or ddm), failures with the "
            "device's ErrorChain",
            "parameters": [_APP],
            "responses": {
                "200": json_response(
                    {
                        "type": "object",
                        "properties": {
                            "app": STR,
                            "devices": {"type": "array", "items": ref("AppDeviceState")},
                        },
                    },
                    "The devices",
                ),
                **errors(404),
            },
        },
    },
    "/api/v1/apps/{key}/licenses": {
        "get": {
            "summary": "Apps and Books licenses of an App Store app, by serial",
            "parameters": [_APP],
            "responses": {"200": json_response(_OBJECT, "The licenses"), **errors(404)},
        },
        "post": {
            "summary": "Assign licenses to device serials and follow Apple's event",
            "parameters": [_APP],
            "requestBody": _SERIALS,
            "responses": {
                **_EVENT_ANSWERS,
                **errors(400, 404, 409, 413, 422, 429, 502, why=_WHY_APPLE),
            },
        },
    },
    "/api/v1/apps/{key}/licenses/revoke": {
        "post": {
            "summary": "Revoke licenses from device serials and follow Apple's event",
            "parameters": [_APP],
            "requestBody": _SERIALS,
            "responses": {
                **_EVENT_ANSWERS,
                **errors(400, 404, 409, 413, 422, 429, 502, why=_WHY_APPLE),
            },
        },
    },
    "/api/v1/apps/vpp/token": {
        "get": {
            "summary": "The content token: organisation, expiry, warnings",
            "responses": {"200": json_response(ref("VppToken"), "The token"), **errors()},
        },
        "put": {
            "summary": "Upload the content token (.vpptoken text); Apple is asked to accept it",
            "requestBody": _body(ref("VppTokenUpload")),
            "responses": {
                "200": json_response(ref("VppToken"), "Installed"),
                **errors(400, 413, 422, why={422: "Not a content token, expired, or refused"}),
            },
        },
    },
    "/api/v1/apps/vpp/assets": {
        "get": {
            "summary": "Assets and license counts, as last synced",
            "responses": {"200": json_response(_OBJECT, "The assets"), **errors()},
        },
    },
    "/api/v1/apps/vpp/assets/sync": {
        "post": {
            "summary": "Fetch assets and license counts from Apple now",
            "responses": {
                "200": json_response(_OBJECT, "The assets"),
                **errors(409, 422, 429, 502, why=_WHY_APPLE),
            },
        },
    },
    "/api/v1/apps/vpp/events/{event_id}": {
        "get": {
            "summary": "One Apps and Books event as recorded",
            "parameters": [_EVENT],
            "responses": {"200": json_response(ref("VppEvent"), "The event"), **errors(404)},
        },
    },
    "/api/v1/apps/vpp/events/{event_id}/follow": {
        "post": {
            "summary": "Poll Apple until the event completes",
            "parameters": [_EVENT],
            "responses": {**_EVENT_ANSWERS, **errors(404, 409, 422, 429, 502, why=_WHY_APPLE)},
        },
    },
}
