"""The OpenAPI document and the Flask routes under /api/v1 list the same operations, and the
statuses the routes really answer with are among the ones the document promises."""

from __future__ import annotations

import re
from typing import Any

import openapi_spec_validator
import pytest
from jsonschema import Draft202012Validator

from tests.api.conftest import Api, make_key
from tests.profiles.conftest import INVALID, PASSCODE, mobileconfig, write_signer

API = "/api/v1"
_PARAM = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")
_METHODS = {"get", "post", "put", "patch", "delete"}
_PUBLIC = {("/api/v1/openapi.json", "get"), ("/api/v1/trust/jwks.json", "get")}


def _template(rule: str) -> str:
    """A Flask rule as an OpenAPI path: ``<path:target>`` -> ``{target}``."""
    return _PARAM.sub(r"{\1}", rule)


def _routes(app: Any) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API + "/"):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add((_template(rule.rule), method.lower()))
    return found


def _document(app: Any) -> dict[str, Any]:
    reply = app.test_client().get(f"{API}/openapi.json")
    assert reply.status_code == 200
    return reply.get_json()


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): operation
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method in _METHODS
    }


def _responses(app: Any, document: dict[str, Any], method: str, url: str) -> dict[int, Any]:
    """The documented answers, by status, of the operation Flask routes ``url`` to."""
    rule, _ = app.url_map.bind("localhost").match(
        url.split("?")[0], method=method.upper(), return_rule=True
    )
    operation = _operations(document).get((_template(rule.rule), method), {})
    return {int(status): answer for status, answer in operation.get("responses", {}).items()}


def _body_problems(document: dict[str, Any], answer: dict[str, Any], reply: Any) -> list[str]:
    """Where a JSON answer does not fit its documented schema."""
    schema = answer.get("content", {}).get("application/json", {}).get("schema")
    if schema is None or not reply.is_json:
        return []
    validator = Draft202012Validator({**schema, "components": document["components"]})
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(reply.json)]


def test_every_route_is_documented_and_vice_versa(app):
    document = _document(app)
    assert document["openapi"].startswith("3.1")
    operations = _operations(document)
    routes = _routes(app)
    assert sorted(routes - set(operations)) == [], "routes missing from openapi.json"
    assert sorted(set(operations) - routes) == [], "openapi.json documents routes that are gone"
    for key, operation in operations.items():
        assert "x-undocumented" not in operation, key
        assert operation.get("summary"), key
        statuses = {int(status) for status in operation["responses"]}  # no "default" stand-in
        assert any(200 <= status < 300 for status in statuses), key
        if key not in _PUBLIC:
            assert {401, 403} <= statuses, key
            assert operation.get("security") != [], key


def test_path_parameters_are_the_routes(app):
    """Each {name} in a path is a documented path parameter, and no other is."""
    for (path, method), operation in _operations(_document(app)).items():
        documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert documented == set(re.findall(r"{([a-z_]+)}", path)), (path, method)
        for parameter in operation.get("parameters", []):
            assert parameter["schema"], (path, method, parameter["name"])


def test_the_document_is_valid_openapi(app):
    openapi_spec_validator.validate(_document(app))


def test_references_resolve(app):
    document = _document(app)
    for name in re.findall(r"#/components/schemas/([A-Za-z0-9]+)", str(document)):
        assert name in document["components"]["schemas"], name


def test_request_bodies_declare_their_required_keys(app):
    """A JSON body with required keys names them, and each is a declared property."""
    document = _document(app)
    schemas = document["components"]["schemas"]
    for key, operation in _operations(document).items():
        content = operation.get("requestBody", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if schema is None:
            continue
        schema = schemas[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema
        assert schema.get("type") == "object", key
        assert set(schema.get("required", [])) <= set(schema["properties"]), key


# The statuses the routes really return -----------------------------------------------------

KEPT = "kept"  # a profile that exists, for the cases that need one
# (method, url, test-client keyword arguments, the status the route answers with): the bad
# input of tests/profiles/test_api.py and tests/jobs/test_push_cert_cli.py, and more like it.
REFUSALS: list[tuple[str, str, dict[str, Any], int]] = [
    ("post", "/profiles", {"data": "{", "content_type": "application/json"}, 400),
    ("post", "/profiles", {"data": ""}, 400),
    ("post", "/profiles", {"json": ["a list"]}, 400),
    ("post", "/profiles", {"json": {"name": "p", "template": "passcode", "colour": 1}}, 400),
    ("post", "/profiles", {"json": {"name": "p"}}, 400),
    ("post", "/profiles", {"json": {"name": "p", "template": "passcode", "variables": []}}, 400),
    ("post", "/profiles", {"json": {"name": "p", "template": "passcode", "scope": 7}}, 400),
    (
        "post",
        "/profiles",
        {"json": {"name": "p", "template": "passcode", "variables": {"max_failed_attempts": 1}}},
        422,
    ),
    ("post", "/profiles", {"json": {"name": "p", "template": "no-such-template"}}, 422),
    ("post", "/profiles", {"json": {"name": KEPT, "template": "restrictions"}}, 422),  # taken
    ("post", "/profiles/upload", {"data": mobileconfig({"PayloadType": PASSCODE})}, 400),
    ("post", "/profiles/upload?name=bad", {}, 400),
    ("post", "/profiles/upload?name=bad", {"data": b"not a profile"}, 422),
    *[
        ("post", "/profiles/upload?name=bad", {"data": mobileconfig(payload)}, 422)
        for payload, _, _ in INVALID
    ],
    ("get", "/profiles/nope", {}, 404),
    ("get", "/profiles/nope/content", {}, 404),
    ("get", "/profiles/nope/status", {}, 404),
    ("delete", "/profiles/nope", {}, 404),
    ("post", "/profiles/nope/assignments", {"json": {"target": "all"}}, 404),
    ("post", f"/profiles/{KEPT}/assignments", {"json": {}}, 400),
    ("post", f"/profiles/{KEPT}/assignments", {"json": {"target": "tag:"}}, 400),
    ("post", f"/profiles/{KEPT}/assignments", {"data": "[", "content_type": "text/json"}, 400),
    ("delete", "/profiles/nope/assignments/all", {}, 404),
    ("delete", f"/profiles/{KEPT}/assignments/tag:", {}, 400),
    ("delete", f"/profiles/{KEPT}/assignments/tag:a/b", {}, 404),  # not assigned
    ("post", "/profiles/nope/retry", {}, 404),
    ("post", "/devices/NOPE/push", {}, 404),
    ("post", "/devices/NOPE/push", {"json": {"ignored": True}}, 404),
    ("get", "/devices/NOPE/push", {}, 404),
    ("put", "/compliance/policy", {"data": "{"}, 400),
    ("put", "/compliance/policy", {"json": ["a list"]}, 400),
    ("put", "/compliance/policy", {"json": {"colour": True}}, 422),
    ("get", "/compliance/devices/NOPE", {}, 404),
]


def _call(api: Api, method: str, url: str, key: str | None = None, **kwargs: Any) -> Any:
    headers = api.headers(key) if key != "" else {}
    return api.client.open(API + url, method=method.upper(), headers=headers, **kwargs)


def _check(api: Api, document: dict[str, Any], cases: list[Any], key: str | None = None) -> None:
    """Every case answers with its status, that status is documented for its operation, and
    a JSON body fits the documented schema; all mismatches are reported together."""
    wrong = []
    for method, url, kwargs, expected in cases:
        reply = _call(api, method, url, key, **kwargs)
        documented = _responses(api.app, document, method, API + url)
        if reply.status_code != expected or reply.status_code not in documented:
            wrong.append((method, url, reply.status_code, expected, sorted(documented)))
        else:
            problems = _body_problems(document, documented[reply.status_code], reply)
            if problems:
                wrong.append((method, url, reply.status_code, "body", problems))
    assert wrong == [], "(method, url, got, expected, documented)"


@pytest.fixture
def signer(app_config: Any, pki: Any) -> None:
    """The profile signer `mdmserver init` writes: storing and assigning profiles sign them."""
    write_signer(app_config.home, pki)


def test_refusals_are_documented(app, api, signer):
    assert (
        api.post(f"{API}/profiles", {"name": KEPT, "template": "restrictions"}).status_code == 201
    )
    _check(api, _document(app), REFUSALS)


def test_too_large_bodies_are_documented(app, api):
    app.config["MAX_CONTENT_LENGTH"] = 64
    big = {"name": "p", "template": "restrictions", "variables": {"x": "y" * 100}}
    cases = [
        ("post", "/profiles", {"json": big}, 413),
        ("post", "/profiles/upload?name=big", {"data": b"x" * 100}, 413),
    ]
    _check(api, _document(app), cases)


def test_successes_are_documented(app, api, signer):
    """Each profile and push route, called as it should be, answers a documented 2xx."""
    device = api.enroll()
    upload = mobileconfig({"PayloadType": PASSCODE, "minLength": 6})
    p = "/profiles/p"
    _check(
        api,
        _document(app),
        [
            ("get", "/profiles/templates", {}, 200),
            ("post", "/profiles", {"json": {"name": "p", "template": "restrictions"}}, 201),
            ("post", "/profiles", {"json": {"name": "p", "template": "restrictions"}}, 422),
            (
                "post",
                "/profiles",
                {"json": {"name": "p", "template": "restrictions", "replace": True}},
                201,
            ),
            ("post", "/profiles/upload?name=custom&encrypt=no", {"data": upload}, 201),
            ("get", "/profiles", {}, 200),
            ("get", p, {}, 200),
            ("get", f"{p}/content", {}, 200),
            ("post", f"{p}/assignments", {"json": {"target": "all"}}, 201),
            ("post", f"{p}/assignments", {"json": {"target": "all"}}, 200),
            ("get", f"{p}/status", {}, 200),
            ("get", f"/profiles/status?device={device}", {}, 200),
            ("post", f"{p}/retry", {}, 200),
            ("delete", f"{p}/assignments/all", {}, 200),
            ("delete", p, {}, 200),
            ("post", f"/devices/{device}/push", {}, 202),
            ("get", f"/devices/{device}/push", {}, 200),
            ("get", "/push/status", {}, 200),
            ("get", "/compliance/policy", {}, 200),
            ("put", "/compliance/policy", {"json": {"supervised": False}}, 200),
            ("delete", "/compliance/policy", {}, 200),
        ],
    )


def test_changes_held_back_for_want_of_a_signer_are_documented(app, api):
    """Without `mdmserver init`'s signer, changes are kept and answer with their warnings."""
    api.enroll()
    _check(
        api,
        _document(app),
        [
            ("post", "/profiles", {"json": {"name": "p", "template": "restrictions"}}, 201),
            ("post", "/profiles/p/assignments", {"json": {"target": "all"}}, 201),
            ("post", "/profiles/p/retry", {}, 200),
        ],
    )


@pytest.mark.parametrize("credentials", ["none", "another scope"])
def test_every_guarded_route_documents_its_auth_refusal(app, api, credentials):
    """No key is 401 and a key of a scope no route takes (metrics) is 403, on every route but
    the public ones; each of those statuses must be in the route's documented answers."""
    key = "" if credentials == "none" else make_key(app, "scraper", "metrics")
    document = _document(app)
    cases = []
    for path, method in sorted(_operations(document)):
        url = re.sub(r"{[a-z_]+}", "nope", path).removeprefix(API)
        expected = 200 if (path, method) in _PUBLIC else 401 if key == "" else 403
        cases.append((method, url, {}, expected))
    _check(api, document, cases, key)
