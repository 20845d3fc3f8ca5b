"""Issue #14, move 4: one API-key check, one audit trail, one table from domain errors to
HTTP statuses, and an OpenAPI document in step with the routes, with no import cycle."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint

import mdmserver
from mdmserver.admin.audit import REDACTED
from mdmserver.errors import HTTP_STATUS, DomainError, Kind, NotFound, Unauthenticated
from mdmserver.web.api import openapi
from mdmserver.web.errors import refusal
from mdmserver.web.runtime import runtime
from tests.api.conftest import last_audit, make_key

# One API-key check -------------------------------------------------------------------------


def test_a_key_of_the_wrong_scope_is_403_on_admin_and_trust_routes_alike(app, api):
    """The admin API and the trust API refuse through the same check, in the same words."""
    trust_key = make_key(app, "proxy", "trust")
    on_admin = api.get("/api/v1/devices", key=trust_key)
    on_trust = api.get("/api/v1/trust/devices/NOPE")  # the fixture's key is an admin key
    assert (on_admin.status_code, on_trust.status_code) == (403, 403)
    assert on_admin.get_json()["error"] == (
        "this API key has scope 'trust'; this route needs 'admin'"
    )
    assert on_trust.get_json()["error"] == (
        "this API key has scope 'admin'; this route needs 'trust'"
    )
    # And the right scope passes on each.
    assert api.get("/api/v1/devices").status_code == 200
    assert api.get("/api/v1/trust/devices/NOPE", key=trust_key).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/devices", "/api/v1/trust/devices/NOPE", "/metrics"])
def test_no_key_is_401_with_a_challenge_everywhere(app, path):
    reply = app.test_client().get(
        path,
        headers={"Authorization": "Bearer mdm_wrong"},
        environ_base={"REMOTE_ADDR": "192.0.2.9"},
    )
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")


def test_wrong_keys_from_one_address_are_rate_limited_on_every_api(app, app_config):
    """The failures counted on the admin API close the trust API too (one failure path)."""
    limit = app_config.rate_limit_auth_failures_per_address
    client = app.test_client()
    wrong = {"Authorization": "Bearer mdm_wrong"}
    for _ in range(limit):
        assert client.get("/api/v1/devices", headers=wrong).status_code == 401
    refused = client.get("/api/v1/trust/devices/NOPE", headers=wrong)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "failed API authentications" in refused.get_json()["error"]


# One audit trail ---------------------------------------------------------------------------


PASSWORD = "a long console password"


def _console(app: Any, name: str) -> Any:
    """A signed-in console session for a new admin ``name`` (cookies, CSRF tokens)."""
    users = runtime(app).admin.console_users
    users.create(name, "admin", actor="test", password=PASSWORD)
    users.change_password(name, PASSWORD, actor="test")  # past the first-sign-in change
    client = app.test_client()
    base = "https://localhost"

    def csrf(path: str) -> str:
        page = client.get(path, base_url=base).get_data(as_text=True)
        found = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert found, page[:300]
        return found.group(1)

    reply = client.post(
        "/login",
        data={"name": name, "password": PASSWORD, "csrf_token": csrf("/login")},
        base_url=base,
    )
    assert reply.status_code == 302, reply.text
    return client, csrf, base


def test_the_api_and_the_console_write_the_one_audit_table(app, api):
    """The same refused action, from an API key and from a person, is two rows of one table,
    each naming its actor and the refusal's status."""
    reply = api.delete("/api/v1/enrollment-tokens/nope")
    assert reply.status_code == 404
    from_api = last_audit(app)
    client, csrf, base = _console(app, "ada")
    token = csrf("/enrollment")
    page = client.post("/enrollment/nope/revoke", data={"csrf_token": token}, base_url=base)
    assert page.status_code == 404
    from_console = last_audit(app)
    assert (from_api.actor, from_api.action, from_api.targets) == (
        "key:test-admin",
        "enrollment_token.revoke",
        ["nope"],
    )
    assert (from_console.actor, from_console.action) == ("console:ada", "enrollment_token.revoke")
    assert from_api.outcome.startswith("refused 404") and from_console.outcome.startswith(
        "refused 404"
    )
    assert from_console.id > from_api.id


def test_profile_changes_are_audited_by_the_same_decorator(app, api):
    """The profiles routes (once audited from their response status) are one row each."""
    reply = api.delete("/api/v1/profiles/nope/assignments/all")
    assert reply.status_code == 404
    entry = last_audit(app)
    assert (entry.actor, entry.action, entry.targets) == (
        "key:test-admin",
        "profiles.unassign",
        ["nope", "all"],
    )
    assert entry.outcome == f"refused 404: {reply.get_json()['error']}"


def test_no_secret_is_kept_in_an_audit_detail(app):
    audit = runtime(app).admin.audit
    with audit.record("cli:test", "thing.do", ["x"]) as entry:
        entry.detail.update(
            password="hunter2", unlock_token="abc", passcode_present=True, nested={"api_key": "k"}
        )
    kept = last_audit(app)
    assert kept.detail == {
        "password": REDACTED,
        "unlock_token": REDACTED,
        "passcode_present": True,  # a policy rule's name, not a secret
        "nested": {"api_key": REDACTED},
    }


# One table from domain errors to statuses --------------------------------------------------


def test_every_kind_has_one_status_and_a_device_never_gets_401():
    assert set(HTTP_STATUS) == set(Kind)
    assert NotFound("x").status == 404
    assert refusal(Unauthenticated("who?")) == (403, "who?")
    assert refusal(NotFound("no such declaration")) == (404, "no such declaration")


class _Refusal(DomainError):
    kind = Kind.CONFLICT


def test_a_domain_error_answers_its_status_and_anything_else_is_500(app_config):
    """Raised by a service anywhere (here: routes of a fresh app), a domain error is its
    kind's status with its message; a genuine bug stays a 500, a ValueError included."""
    from mdmserver.app import create_app

    fresh = create_app(app_config)
    bp = Blueprint("kinds", __name__)

    @bp.get("/kinds/<kind>")
    def _raise(kind: str) -> str:
        if kind == "bug":
            raise RuntimeError("a genuine bug")
        if kind == "value":
            raise ValueError("not a refusal: a bug too")
        raise _Refusal("it clashes", problems=[{"path": "x", "message": "y"}])

    fresh.register_blueprint(bp)
    fresh.testing = False  # a bug answers 500 instead of raising into the test
    client = fresh.test_client()
    try:
        refused = client.get("/kinds/conflict")
        assert (refused.status_code, refused.get_data(as_text=True)) == (409, "it clashes\n")
        assert client.get("/kinds/bug").status_code == 500
        assert client.get("/kinds/value").status_code == 500
    finally:
        runtime(fresh).close()


def test_under_the_api_a_refusal_is_json_with_its_details(app, api):
    reply = api.post("/api/v1/commands", {"targets": [api.enroll()], "command": []})
    assert reply.status_code == 400  # a CommandRefused of kind invalid
    body = reply.get_json()
    assert body["problems"] and body["error"]


def test_every_domain_error_class_has_a_kind_in_the_table():
    """No exception family carries its own status any more: grep the package."""
    root = Path(mdmserver.__file__).parent
    own_status = []
    for path in root.rglob("*.py"):
        if "web" in path.relative_to(root).parts[:1] or path.parts[-2] in {"server", "testing"}:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    targets = item.targets if isinstance(item, ast.Assign) else []
                    if any(isinstance(t, ast.Name) and t.id == "status" for t in targets):
                        own_status.append(f"{path.relative_to(root)}:{node.name}")
    assert own_status == []


# OpenAPI in step, and no import cycle ------------------------------------------------------


def test_the_document_and_the_routes_are_in_step(app):
    undocumented, unrouted = openapi.mismatches(app)
    assert (undocumented, unrouted) == ([], [])


def test_a_route_without_a_declaration_shows_as_undocumented(app_config):
    from mdmserver.app import create_app

    fresh = create_app(app_config)
    bp = Blueprint("extra", __name__, url_prefix="/api/v1")
    bp.add_url_rule("/extra/<thing>", "extra", lambda thing: thing, methods=["POST"])
    fresh.register_blueprint(bp)
    try:
        assert openapi.mismatches(fresh) == ([("/api/v1/extra/{thing}", "post")], [])
        document = openapi.build(fresh)
        assert document["paths"]["/api/v1/extra/{thing}"]["post"]["x-undocumented"] is True
    finally:
        runtime(fresh).close()


def _imports(package: Path, name: str) -> dict[str, set[str]]:
    """module -> the modules of ``name`` (a package) it imports, read from the source."""
    graph: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        module = name if path.stem == "__init__" else f"{name}.{path.stem}"
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == name:
                    for alias in node.names:
                        sub = f"{name}.{alias.name}"
                        found.add(sub if (package / f"{alias.name}.py").exists() else name)
                elif node.module.startswith(name + "."):
                    found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith(name + ".")}
        graph[module] = found - {module}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for nxt in sorted(graph.get(node, ())):
            found = visit(nxt, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return None


def test_the_openapi_modules_form_no_import_cycle():
    """What the document is built from (openapi.py and everything of web/api it imports) has
    no cycle: the descriptions import the vocabulary (spec.py), never the builder."""
    package = Path(mdmserver.__file__).parent / "web" / "api"
    graph = _imports(package, "mdmserver.web.api")
    reachable, todo = set(), ["mdmserver.web.api.openapi"]
    while todo:
        module = todo.pop()
        if module not in reachable:
            reachable.add(module)
            todo.extend(graph.get(module, ()))
    assert "mdmserver.web.api.openapi_apps" in reachable and "mdmserver.web.api" not in reachable
    assert _cycle({m: graph[m] for m in reachable}) is None
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]  # the check can fail
