"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 description of this API. Public: it describes
the API, it opens nothing.

The document is built from the app's routes: each (path, method) under /api/v1 that Flask
serves is described by the one operation declared for it in a module of :data:`FEATURES`
(``PATHS``, keyed by OpenAPI path then method; ``SCHEMAS`` for its components), with the
vocabulary of web/api/spec.py. A route nobody declared still appears, marked
``x-undocumented``, and a declaration whose route is gone is left out: both are what
:func:`mismatches` reports and tests/api/test_openapi.py refuses, so a route cannot ship
without its description, nor a description outlive its route.

To describe a new route, add its operation to its feature's ``openapi_*`` module (a new
feature: a new module, listed in FEATURES).
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify

from mdmserver.web.api import (
    openapi_apps,
    openapi_core,
    openapi_declarations,
    openapi_profiles,
    openapi_push,
    openapi_trust,
)
from mdmserver.web.api.keys import public
from mdmserver.web.api.spec import Paths, Schemas

bp = Blueprint("openapi", __name__)

API_PREFIX = "/api/v1/"
_METHODS = ("get", "put", "post", "patch", "delete")
_PARAM = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")

PATHS: Paths = {
    "/api/v1/openapi.json": {
        "get": {
            "summary": "This document",
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1 document"}},
        }
    },
}

# Every module declaring operations (the one declarative source, feature by feature).
FEATURES: tuple[ModuleType, ...] = (
    openapi_core,
    openapi_profiles,
    openapi_push,
    openapi_trust,
    openapi_declarations,
    openapi_apps,
)

INFO = {
    "openapi": "3.1.0",
    "info": {"title": "mdmserver admin API", "version": "1"},
    "security": [{"bearer": []}],
}
SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (mdmserver api-key create) of scope admin; of"
        " scope trust for /api/v1/trust",
    }
}


def declared() -> tuple[Paths, Schemas]:
    """Every declared operation by (path, method), and every schema, from all the features.
    A path or schema declared twice is a mistake, refused at once."""
    paths: Paths = {}
    schemas: Schemas = {}
    sources = [(m.PATHS, getattr(m, "SCHEMAS", {})) for m in FEATURES] + [(PATHS, {})]
    for declared_paths, declared_schemas in sources:
        for path, operations in declared_paths.items():
            for method, operation in operations.items():
                if method in paths.get(path, {}):
                    raise ValueError(f"{method.upper()} {path} is declared twice")
                paths.setdefault(path, {})[method] = operation
        for name, schema in declared_schemas.items():
            if name in schemas:
                raise ValueError(f"schema {name} is declared twice")
            schemas[name] = schema
    return paths, schemas


def routes(app: Flask) -> set[tuple[str, str]]:
    """The (OpenAPI path, method) pairs the app serves under /api/v1."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(API_PREFIX):
            for method in rule.methods or ():
                if method.lower() in _METHODS:
                    found.add((_PARAM.sub(r"{\1}", rule.rule), method.lower()))
    return found


def mismatches(app: Flask) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(routes no module declares, declarations no route serves); both empty when in step."""
    paths, _ = declared()
    operations = {(path, method) for path, ops in paths.items() for method in ops}
    served = routes(app)
    return sorted(served - operations), sorted(operations - served)


def build(app: Flask) -> dict[str, Any]:
    """The document for ``app``: its routes, each with its declared operation."""
    paths, schemas = declared()
    out: Paths = {}
    for path, method in sorted(routes(app)):
        operation = paths.get(path, {}).get(method)
        if operation is None:
            operation = {"x-undocumented": True, "responses": {"default": {"description": "?"}}}
        out.setdefault(path, {})[method] = operation
    return {
        **INFO,
        "components": {"securitySchemes": SECURITY_SCHEMES, "schemas": schemas},
        "paths": out,
    }


@bp.get("/openapi.json")
@public
def document() -> Response:
    return jsonify(build(current_app))
