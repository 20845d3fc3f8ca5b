"""The OpenAPI document and the Flask routes under /api/v1 list the same operations."""

from __future__ import annotations

import re
import warnings

API = "/api/v1"
_PARAM = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")
# The routes this feature (issue #5) owns: each must be documented by hand, not a placeholder.
OWN = {
    ("/api/v1/devices", "get"),
    ("/api/v1/devices/{ident}", "get"),
    ("/api/v1/devices/{ident}/queue", "get"),
    ("/api/v1/devices/{ident}/queue", "delete"),
    ("/api/v1/commands", "post"),
    ("/api/v1/commands/{command_uuid}", "get"),
    ("/api/v1/enrollment-tokens", "get"),
    ("/api/v1/enrollment-tokens", "post"),
    ("/api/v1/enrollment-tokens/{token_id}", "delete"),
    ("/api/v1/openapi.json", "get"),
}


def _routes(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API + "/"):
            continue
        path = _PARAM.sub(r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add((path, method.lower()))
    return found


def _operations(document) -> dict[tuple[str, str], dict]:
    return {
        (path, method): operation
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }


def test_every_route_is_documented_and_vice_versa(app):
    document = app.test_client().get(f"{API}/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    operations = _operations(document)
    routes = _routes(app)
    assert routes - set(operations) == set(), "routes missing from openapi.json"
    assert set(operations) - routes == set(), "openapi.json documents routes that do not exist"
    assert routes >= OWN
    for key in OWN:
        assert not operations[key].get("x-undocumented"), key
        assert operations[key]["responses"], key
    placeholders = sorted(k for k, op in operations.items() if op.get("x-undocumented"))
    if placeholders:
        warnings.warn(
            f"routes other features have not documented yet: {placeholders}", stacklevel=1
        )


def test_references_resolve(app):
    document = app.test_client().get(f"{API}/openapi.json").get_json()
    for name in re.findall(r"#/components/schemas/([A-Za-z]+)", str(document)):
        assert name in document["components"]["schemas"], name
