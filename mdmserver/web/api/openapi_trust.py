"""The OpenAPI description of the device-trust and compliance routes (``web/trust.py``).

Kept apart from ``openapi.py`` so each feature's description sits in a module of its own; it
is one of ``openapi.FEATURES``. The trust routes need a key of
scope ``trust`` (an admin key gets 403), the compliance routes an ``admin`` key, and the JWKS
none: an access proxy fetches it to verify assertions offline.
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

_TRUST_ONLY = {403: "A key of another scope: the trust routes need scope trust"}
_BOOL = {"type": "boolean"}
_HOURS = {
    "oneOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "null"}, {"const": False}],
    "description": "a positive number; null or false turns the rule off",
}
_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}}

SCHEMAS: dict[str, Any] = {
    "TrustAnswer": {
        "type": "object",
        "required": ["managed", "compliant"],
        "properties": {
            "managed": _BOOL,
            "compliant": _BOOL,
            "reasons": {
                "type": "array",
                "items": STR,
                "description": "why not compliant; unmanaged: only for an ambiguous serial",
            },
            "evaluated_at": TIME,
            "identity": {
                "type": "string",
                "enum": ["attested", "token"],
                "description": "only when managed. attested: the device's identity was issued "
                "over the air for the UDID its Apple identity vouched for; token: enrolled "
                "with an enrollment token, the UDID is the device's own claim",
            },
        },
    },
    "TrustAssertion": {
        "allOf": [
            ref("TrustAnswer"),
            {
                "type": "object",
                "properties": {
                    "assertion": {
                        "type": "string",
                        "description": "ES256 JWT (sub, managed, compliant, identity); "
                        "only when managed",
                    },
                    "expires_in": {"type": "integer", "description": "seconds"},
                },
            },
        ]
    },
    "CompliancePolicy": {
        "type": "object",
        "additionalProperties": False,
        "description": "Unknown keys are refused (422), so a typo never turns a rule off",
        "properties": {
            "min_os_version": {
                "type": "object",
                "additionalProperties": STR,
                "description": "platform -> minimum OS version",
            },
            "passcode_present": _BOOL,
            "passcode_compliant": _BOOL,
            "hardware_encryption": _BOOL,
            "sip_enabled": _BOOL,
            "firewall_enabled": _BOOL,
            "supervised": _BOOL,
            "required_profiles": _STRINGS,
            "required_apps": {
                "type": "array",
                "description": "apps that must be installed (by any app list or DDM status): "
                "a bundle id, or {bundle_id, min_version}",
                "items": {
                    "oneOf": [
                        STR,
                        {
                            "type": "object",
                            "required": ["bundle_id"],
                            "additionalProperties": False,
                            "properties": {"bundle_id": STR, "min_version": STR},
                        },
                    ]
                },
            },
            "forbidden_apps": _STRINGS,
            "jailbreak_apps": _BOOL,
            "max_checkin_age_hours": _HOURS,
            "identity_cert_min_days": _HOURS,
            "os_updates": {
                "type": "array",
                "description": "on version >= version after by (set by mdmserver os-update)",
                "items": {
                    "type": "object",
                    "required": ["version", "by"],
                    "additionalProperties": False,
                    "properties": {
                        "version": STR,
                        "by": {"type": "string", "description": "ISO 8601; UTC without a zone"},
                        "platform": {"type": ["string", "null"]},
                    },
                },
            },
            "remediation": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "requeue_missing_profiles": _BOOL,
                    "refresh_inventory": _BOOL,
                    "reinstall_required_apps": _BOOL,
                    "remove_forbidden_apps": _BOOL,
                    "device_lock_after_hours": _HOURS,
                    "device_lock_message": {"type": "string", "maxLength": 200},
                },
            },
        },
    },
}

_POLICY_ANSWER = json_response(
    {
        "type": "object",
        "properties": {
            "source": {"type": "string", "description": "api, the policy file's path, or defaults"},
            "policy": ref("CompliancePolicy"),
        },
    },
    "The policy in force",
)


def _trust(param: dict[str, Any] | None, summary: str, assertion: bool) -> dict[str, Any]:
    """One trust lookup: the plain answer, or the answer with a signed assertion."""
    schema = ref("TrustAssertion" if assertion else "TrustAnswer")
    return {
        "get": {
            "summary": summary,
            "parameters": [param] if param else [],
            "responses": {
                "200": json_response(schema, "Managed or not (unknown is not managed)"),
                **errors(why=_TRUST_ONLY),
            },
        }
    }


def _presented(summary: str, assertion: bool) -> dict[str, Any]:
    """A lookup of the client certificate the access proxy forwards in a header."""
    operation = _trust(None, summary, assertion)
    operation["get"]["responses"].update(
        errors(
            400,
            why={
                **_TRUST_ONLY,
                400: "No client certificate header is configured, or it cannot be parsed",
            },
        )
    )
    return operation


_KEY = path_param("key", "UDID or serial number")
_FINGERPRINT = path_param("fingerprint", "SHA-256 of the certificate (hex, colons allowed)")

PATHS: dict[str, Any] = {
    "/api/v1/trust/jwks.json": {
        "get": {
            "summary": "The public key that signs trust assertions (JWKS)",
            "security": [],
            "responses": {
                "200": json_response(
                    {"type": "object", "properties": {"keys": {"type": "array"}}}, "The JWKS"
                )
            },
        }
    },
    "/api/v1/trust/devices/{key}": _trust(_KEY, "Is this device managed and compliant?", False),
    "/api/v1/trust/devices/{key}/assertion": _trust(
        _KEY, "The same answer with a signed assertion", True
    ),
    "/api/v1/trust/certificate/{fingerprint}": _trust(
        _FINGERPRINT, "Trust for the device holding this identity certificate", False
    ),
    "/api/v1/trust/certificate/{fingerprint}/assertion": _trust(
        _FINGERPRINT, "The same answer with a signed assertion", True
    ),
    "/api/v1/trust/certificate": _presented(
        "Trust for the client certificate in the configured header", False
    ),
    "/api/v1/trust/certificate/assertion": _presented(
        "The same answer with a signed assertion", True
    ),
    "/api/v1/trust/access": {
        "get": {
            "summary": "May the holder of the forwarded client certificate in? (nginx"
            " auth_request): 200 for a managed, compliant device, 403 otherwise",
            "description": "The certificate comes in the header named by MDM_CLIENT_CERT_HEADER,"
            " set by the access proxy; it is a device's access identity (installed by"
            " profiles/access-identity.toml) or its MDM identity. A refusal carries the reasons"
            " in the body and, as one line of printable text, in X-MDM-Trust-Reason.",
            "responses": {
                "200": json_response(ref("TrustAnswer"), "A managed and compliant device"),
                **errors(
                    400,
                    why={400: "No client certificate header is configured, or it cannot be parsed"},
                ),
                "403": json_response(
                    {"oneOf": [ref("TrustAnswer"), ref("Error")]},
                    "Not a managed and compliant device (a TrustAnswer saying why), or a key of"
                    " another scope (an Error)",
                ),
            },
        }
    },
    "/api/v1/compliance/policy": {
        "get": {
            "summary": "The compliance policy in force, and where it comes from",
            "responses": {"200": _POLICY_ANSWER, **errors()},
        },
        "put": {
            "summary": "Set the policy (kept in the database, over the file)",
            "requestBody": {
                "required": True,
                **json_response(ref("CompliancePolicy"), "The policy"),
            },
            "responses": {
                "200": _POLICY_ANSWER,
                **errors(
                    400,
                    422,
                    why={
                        400: "Malformed JSON, or not a JSON object",
                        422: "A key or value the policy does not accept (named)",
                    },
                ),
            },
        },
        "delete": {
            "summary": "Drop the API's policy: the file's (or the defaults) apply again",
            "responses": {
                "200": _POLICY_ANSWER,
                **errors(422, why={422: "The policy file is invalid"}),
            },
        },
    },
    "/api/v1/compliance/devices/{device_id}": {
        "get": {
            "summary": "A device's inventory facts, compliance state and their history",
            "parameters": [path_param("device_id", "UDID")],
            "responses": {
                "200": json_response(
                    {
                        "type": "object",
                        "properties": {
                            "device_id": STR,
                            "inventory": {"type": ["object", "null"]},
                            "compliance": {"type": ["object", "null"]},
                            "history": {"type": "array", "items": {"type": "object"}},
                            "inventory_history": {"type": "array", "items": {"type": "object"}},
                            "remediations": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                    "The device's state",
                ),
                **errors(404, why={404: "No inventory or compliance state for this device"}),
            },
        }
    },
}
