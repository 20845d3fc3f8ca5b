"""The DDM routes answer what their OpenAPI description promises, bodies fitting its schemas."""

from __future__ import annotations

from tests.api.conftest import api  # noqa: F401 (the fixture)
from tests.api.test_openapi import _check, _document
from tests.ddm.conftest import PASSCODE

ACTIVATION = "com.apple.activation.simple"


def test_declaration_routes_answer_as_documented(app, api):  # noqa: F811
    device = api.enroll()
    put = "/declarations/p"
    cases = [
        ("put", put, {"json": {"Type": PASSCODE, "Payload": {"MinimumLength": 4}}}, 201),
        ("put", put, {"json": {"Type": PASSCODE, "Payload": {"MinimumLength": 4}}}, 200),
        ("put", put, {"json": {"Type": PASSCODE, "Payload": {"MinimumLength": "x"}}}, 422),
        ("put", put, {"data": "{", "content_type": "application/json"}, 400),
        ("put", put, {"json": ["a list"]}, 400),
        (
            "put",
            "/declarations/a",
            {"json": {"Type": ACTIVATION, "Payload": {"StandardConfigurations": ["p"]}}},
            201,
        ),
        ("get", "/declarations", {}, 200),
        ("get", put, {}, 200),
        ("get", "/declarations/nope", {}, 404),
        ("post", "/declarations/a/assignments", {"json": {"target": "all"}}, 201),
        ("post", "/declarations/a/assignments", {"json": {"target": "all"}}, 200),
        ("post", "/declarations/a/assignments", {"json": {}}, 400),
        ("post", "/declarations/nope/assignments", {"json": {"target": "all"}}, 404),
        ("get", f"/devices/{device}/declarations", {}, 200),
        ("get", f"/devices/{device}/status-items", {}, 200),
        ("get", "/devices/NOPE/declarations", {}, 404),
        ("put", "/declarations/blob/data", {"data": b"bytes"}, 409),  # no MDM_SERVER_URL
        ("delete", put, {}, 409),  # the activation needs it
        ("delete", "/declarations/a/assignments/all", {}, 200),
        ("delete", "/declarations/a/assignments/all", {}, 404),
        ("delete", "/declarations/a", {}, 200),
        ("delete", put, {}, 200),
        ("get", "/os-updates", {}, 404),
        ("post", "/os-updates", {"json": {"version": "17.5", "by": "2030-01-01"}}, 201),
        ("post", "/os-updates", {"json": {"version": "17.5"}}, 400),
        ("get", "/os-updates", {}, 200),
    ]
    _check(api, _document(app), cases)
