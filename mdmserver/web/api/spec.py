"""The vocabulary of the OpenAPI description (``/api/v1/openapi.json``): the helpers every
``openapi_*`` module declares its operations with. Data only: it imports no route and no other
module of this package, so the description modules form no import cycle.

Each feature declares its operations in one module, ``PATHS`` keyed by OpenAPI path (Flask's
``<name>`` written ``{name}``) then by method, and its schemas in ``SCHEMAS``;
``openapi.py`` lists those modules in ``FEATURES`` and builds the document from the app's
routes (tests/api/test_openapi.py: every route is declared, every declaration is routed).
"""

from __future__ import annotations

from typing import Any

Paths = dict[str, dict[str, Any]]
Schemas = dict[str, Any]


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_WHY = {
    400: "Malformed JSON, a bad field, or a control character in the path or a query parameter"
    " (the message names it)",
    401: "Missing, unknown or revoked API key",
    403: "An API key of another scope",
    404: "Not found (the message names the unknown device, command, token or profile)",
    409: "Conflict (a target that is not enrolled, or a serial number that several enrolled"
    " devices report: `candidates` lists them)",
    413: "The body is larger than this server accepts",
    422: "Refused by validation; `problems` lists key paths and reasons",
}


def errors(*codes: int, why: dict[int, str] | None = None) -> dict[str, Any]:
    """The refusals of an operation, always with 401 and 403 (every route but this document
    needs a key) and 400 (every route refuses a control character in its path or query, see
    mdmserver/bounds.py); ``why`` words a status for this operation where the generic text is
    vague."""
    words = _WHY | (why or {})
    return {
        str(code): json_response(ref("Error"), words[code])
        for code in dict.fromkeys((400, 401, 403, *codes))
    }


STR = {"type": "string"}
TIME = {"type": ["string", "null"], "format": "date-time"}


def path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": STR}
