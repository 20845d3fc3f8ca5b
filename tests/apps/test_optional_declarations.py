"""Available App Store apps as Optional ``app.managed`` declarations (apps/declarative.py), on
SQLite and PostgreSQL: both forms' identifiers name their app, the admin DDM API cannot
overwrite the Optional one, an app whose required assignment carries a managed configuration
is declared in neither form, and an available app is never sent by command (roll-out or a
command-path device's reconciliation)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert

from mdmserver.apps.declarative import activation_id, app_id_of, configuration_id
from mdmserver.apps.rollout import roll_out
from mdmserver.storage.sql.schema import device_tags
from mdmserver.web.runtime import runtime
from tests.apps.conftest import ADAM_ID


def test_both_forms_name_the_app_and_activations_none() -> None:
    assert configuration_id("pages", "available") == configuration_id("pages") + ".optional"
    assert app_id_of(configuration_id("pages")) == "pages"
    assert app_id_of(configuration_id("pages", "available")) == "pages"
    assert app_id_of(activation_id("pages", "available")) is None
    assert app_id_of(activation_id("pages")) is None
    assert app_id_of("com.example.other") is None


def _pages(api) -> str:
    body = {"name": "pages", "kind": "app_store", "bundle_id": "com.apple.Pages"}
    reply = api.post("/api/v1/apps", {**body, "adam_id": ADAM_ID})
    assert reply.status_code in (200, 201), reply.text
    return str(reply.get_json()["id"])


def test_optional_declaration_is_server_owned_and_follows_the_rules(app, api) -> None:
    pages = _pages(api)
    ddm = runtime(app).ddm.service
    reply = api.post(f"/api/v1/apps/{pages}/assignments",
                     {"target": "tag:kiosk", "behaviour": "available"})  # fmt: skip
    assert reply.status_code == 200, reply.text
    optional = configuration_id(pages, "available")
    row = ddm.store.get(optional)
    assert row is not None and row.payload["InstallBehavior"]["Install"] == "Optional"
    assert ddm.store.get(configuration_id(pages)) is None  # no required assignment
    assert ddm.store.assignments(activation_id(pages, "available")) == ["tag:kiosk"]

    # The admin DDM API refuses to overwrite it, and changes nothing.
    body = {"Type": "com.apple.configuration.app.managed", "Payload": {"AppStoreID": "1"}}
    put = api.client.put(f"/api/v1/declarations/{optional}", json=body, headers=api.headers())
    assert 400 <= put.status_code < 500, put.text
    assert ddm.store.get(optional).payload["AppStoreID"] == ADAM_ID

    # A required assignment with a managed configuration: declared in neither form.
    reply = api.post(f"/api/v1/apps/{pages}/assignments",
                     {"target": "tag:field", "configuration": {"Server": "x"}})  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert ddm.store.get(optional) is None
    assert ddm.store.get(activation_id(pages, "available")) is None
    assert ddm.store.get(configuration_id(pages)) is None


def test_an_available_app_is_never_sent_by_command(app, api) -> None:
    pages = _pages(api)
    old = api.enroll(os_version="17.1", serial="C02OPT0001")  # no app.managed: command path
    with runtime(app).engine.begin() as conn:
        conn.execute(insert(device_tags).values(
            device_id=old, tag="kiosk", created_at=datetime.now(UTC)))  # fmt: skip
    reply = api.post(f"/api/v1/apps/{pages}/assignments",
                     {"target": "tag:kiosk", "behaviour": "available"})  # fmt: skip
    assert reply.status_code == 200 and reply.get_json()["rollout"] is None
    service, storage = runtime(app).apps, runtime(app).storage
    assert roll_out(service.store, storage, service.server_url, pages).total == 0
    queued = runtime(app).hooks.readers.apps.reconcile(old, {})
    assert "InstallApplication" not in queued
    kinds = [q.request_type for q in storage.queue(old)]
    assert "InstallApplication" not in kinds, kinds
