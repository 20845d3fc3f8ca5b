"""API keys: 401 without a valid key, 403 for another scope, revocation, hashed storage."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from mdmserver.storage.sql.schema import api_keys
from mdmserver.web.runtime import runtime
from tests.api.conftest import make_key


def test_no_key_is_401_json(app, api):
    reply = app.test_client().get("/api/v1/devices")
    assert reply.status_code == 401
    assert "missing API key" in reply.get_json()["error"]
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")


def test_wrong_scheme_and_bad_key_are_401(app, api):
    client = app.test_client()
    basic = client.get("/api/v1/devices", headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401
    bad = api.get("/api/v1/devices", key="mdm_not-a-key")
    assert bad.status_code == 401 and "invalid or revoked" in bad.get_json()["error"]


def test_revoked_key_is_401(app, api):
    assert api.get("/api/v1/devices").status_code == 200
    runtime(app).admin.api_keys.revoke("test-admin", actor="test")
    reply = api.get("/api/v1/devices")
    assert reply.status_code == 401 and "revoked" in reply.get_json()["error"]


def test_key_of_another_scope_is_403(app, api):
    trust = make_key(app, "device-trust", "trust")
    reply = api.get("/api/v1/devices", key=trust)
    assert reply.status_code == 403
    assert "'trust'" in reply.get_json()["error"]


def test_keys_are_stored_hashed(app, api):
    with runtime(app).engine.connect() as conn:
        rows = conn.execute(select(api_keys.c.name, api_keys.c.key_hash)).all()
    assert [(r.name, r.key_hash) for r in rows] == [
        ("test-admin", hashlib.sha256(api.key.encode()).hexdigest())
    ]
    assert all(api.key not in str(tuple(r)) for r in rows)


def test_openapi_document_is_public(app):
    reply = app.test_client().get("/api/v1/openapi.json")
    assert reply.status_code == 200 and reply.get_json()["openapi"] == "3.1.0"


def test_unrouted_api_path_answers_json(app, api):
    reply = api.get("/api/v1/nothing-here")
    assert reply.status_code == 404 and "error" in reply.get_json()
