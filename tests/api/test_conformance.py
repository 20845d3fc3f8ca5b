"""The admin API against its own OpenAPI document, on SQLite and PostgreSQL.

schemathesis generates requests from ``/api/v1/openapi.json`` (valid and invalid ones: NUL and
other odd characters in paths and query parameters, huge numbers, wrong types) and checks every
answer: never a 5xx, every status and content type documented, every body matching its schema.
The number of examples per operation is bounded so the run stays a few seconds per database.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok

from tests.api.conftest import Api

EXAMPLES_PER_OPERATION = 10
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


def test_every_operation_conforms_to_the_document(app: Any, api: Api) -> None:
    api.enroll()  # so generated ids sometimes meet a real device, not only 404s
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures: list[str] = []
    ran: dict[str, int] = {}

    def fuzz(operation: Any) -> None:
        label = operation.label
        ran[label] = 0

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,  # no example database left in the checkout
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            ran[label] += 1
            try:
                case.call_and_validate(headers=api.headers(), checks=CHECKS)
            except FailureGroup as group:  # every check that failed for this request
                failures.append(f"{label}: {str(group)[:600]}")
            except Failure as exc:
                failures.append(f"{label}: {str(exc)[:600]}")

        run()

    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the document does not load: {result}"
        fuzz(result.ok())
    assert len(ran) >= 30, "the document lists fewer operations than the API has"
    assert all(count > 0 for count in ran.values()), ran
    print(f"schemathesis: {sum(ran.values())} requests over {len(ran)} operations")
    assert not failures, "\n\n".join(failures[:10])


@pytest.fixture
def routes(app: Any) -> list[tuple[str, frozenset[str]]]:
    """Every routed path (its variables filled in) with the methods it answers."""
    found = []
    for rule in app.url_map.iter_rules():
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<path:{name}>", "x").replace(f"<{name}>", "x")
        found.append((path, frozenset(rule.methods or ())))
    return found


def test_an_unknown_method_answers_405_with_allow(app: Any, api: Api, routes) -> None:
    client = app.test_client()
    for path, methods in routes:
        for method in ("FOO", "PATCH", "TRACE"):
            if method in methods:
                continue
            reply = client.open(path, method=method, headers=api.headers())
            assert reply.status_code == 405, (method, path, reply.status_code)
            allowed = {m.strip() for m in reply.headers.get("Allow", "").split(",")}
            assert allowed >= methods - {"OPTIONS", "HEAD"}, (method, path, allowed)
    # The device endpoints, served in front of Flask, answer the same way.
    for path in ("/mdm/checkin", "/mdm/connect"):
        reply = client.open(path, method="FOO")
        assert reply.status_code == 405 and reply.headers["Allow"] == "PUT"
