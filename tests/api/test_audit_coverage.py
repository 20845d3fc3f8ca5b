"""Every mutating call under /api/v1 (POST, PUT, PATCH, DELETE) by an authenticated key writes
exactly one audit row naming the key, the action and the targets, refused calls included (with
their status); 401/403 answers are not audited. The routes are taken from the app's url_map, so
a new mutating route is checked without anyone adding it here."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mdmserver.admin.errors import NotFound
from mdmserver.web.runtime import runtime
from tests.api.conftest import Api, last_audit

API = "/api/v1/"
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
_PARAM = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")
# Bodies that most routes refuse (ids in the path are unknown, too); "{}" is accepted by some.
PROBES = {
    "empty object": b"{}",
    "not an object": b"[]",
    "malformed JSON": b"{",
    "empty body": b"",
}


def _mutating_routes(app: Any) -> list[tuple[str, str, str]]:
    """(OpenAPI-style path, method, a URL with every path argument set to "nope")."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(API):
            url = _PARAM.sub("nope", rule.rule)
            for method in sorted(rule.methods & MUTATING):
                found.append((_PARAM.sub(r"{\1}", rule.rule), method.lower(), url))
    return sorted(found)


def _audit_problem(api: Api, method: str, url: str, body: bytes) -> str | None:
    """What is wrong with the audit trail of one call, or None: it must write exactly one row
    naming the key, the action and (when the path names them) the targets, whose outcome
    agrees with the reply ("ok" for a 2xx/3xx, "refused <status>: ..." otherwise)."""
    before = last_audit(api.app)
    reply = api.client.open(
        url, method=method, headers=api.headers(), data=body, content_type="application/json"
    )
    rows = _rows_after(api.app, before.id if before is not None else 0)
    if len(rows) != 1:
        return f"{len(rows)} audit rows"
    entry = rows[0]
    if entry.actor != "key:test-admin" or not entry.action:
        return f"actor/action: {entry}"
    if "nope" in url and "nope" not in entry.targets:
        return f"targets {entry.targets} do not name the path's argument"
    status = reply.status_code
    if status < 400 and entry.outcome != "ok":
        return f"{status} recorded as {entry.outcome!r}"
    if status >= 400 and not entry.outcome.startswith(f"refused {status}"):
        return f"{status} recorded as {entry.outcome!r}"
    return None


def _rows_after(app: Any, last_id: int) -> list[Any]:
    """The audit rows written since the row ``last_id``, newest first."""
    entries = runtime(app).admin.store.audit_entries(limit=10)
    return [entry for entry in entries if entry.id > last_id]


def test_the_mutating_routes_are_found(app):
    """The enumeration below is not vacuous: it sees the routes of every blueprint."""
    routes = {(path, method) for path, method, _ in _mutating_routes(app)}
    assert {
        ("/api/v1/devices/{device_id}/push", "post"),
        ("/api/v1/devices/{ident}/queue", "delete"),
        ("/api/v1/commands", "post"),
        ("/api/v1/profiles/{key}/assignments/{target}", "delete"),
        ("/api/v1/compliance/policy", "put"),
    } <= routes


@pytest.mark.parametrize("probe", PROBES)
def test_every_mutating_call_is_audited(app, api, probe):
    problems = {}
    for path, method, url in _mutating_routes(app):
        problem = _audit_problem(api, method.upper(), url, PROBES[probe])
        if problem is not None:
            problems[(path, method)] = problem
    assert problems == {}, "mutating calls whose audit row is missing or wrong"


def test_a_service_record_inside_a_route_record_is_the_same_row(app):
    """The route opens the record, the service joins it: one row with the service's targets
    and detail, and the refusal (raised in the service) as its outcome."""
    audit = runtime(app).admin.audit
    before = last_audit(app)
    # The second record of each `with` is opened inside the first.
    with (
        audit.record("key:k", "thing.do", ["from-path"]),
        audit.record("key:k", "thing.do", ["resolved"]) as entry,
    ):
        entry.detail["n"] = 1
    with (
        pytest.raises(NotFound),
        audit.record("key:k", "thing.do"),
        audit.record("key:k", "thing.do", ["x"]),
    ):
        raise NotFound("no x")
    ok, refused = reversed(_rows_after(app, before.id if before is not None else 0))
    assert (ok.targets, ok.detail, ok.outcome) == (["resolved"], {"n": 1}, "ok")
    assert (refused.targets, refused.outcome) == (["x"], "refused 404: no x")
