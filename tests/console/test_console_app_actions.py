"""The console does what /api/v1/apps does (issue #17), on SQLite and PostgreSQL, against the
local Apps and Books stand-in: adding an App Store app, uploading an in-house app and a macOS
package, deleting, the content token (expiry shown, the token never echoed), syncing assets,
assigning and revoking licenses by serial, following Apple's events. Each action is for the
right role only, needs the form's CSRF token, is audited, and bad input is a 4xx with its
reason that changes nothing. One browser test does the admin's path in headless Chromium."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from mdmserver.testing.app_packages import make_ipa, make_pkg
from mdmserver.testing.fake_vpp import FakeVpp, make_token
from mdmserver.web.runtime import runtime
from tests.apps.conftest import ADAM_ID, fake_vpp, stoken, vpp_url  # noqa: F401
from tests.console.browser import browser_session
from tests.console.test_browser import sign_in, wait_for
from tests.console.test_console_http import Person, audit_actions


@pytest.fixture
def app_config(app_config: Any, vpp_url: str) -> Any:  # noqa: F811
    return dataclasses.replace(app_config, vpp_url=vpp_url, server_url="https://mdm.example.com")


def _names(app: Any) -> list[str]:
    return sorted(a.name for a in runtime(app).apps.store.all())


def _forms(page: str) -> list[str]:
    """The data-form names on a page (each form once: the page is not laid out twice)."""
    return [part.split('"', 1)[0] for part in page.split('data-form="')[1:]]


def _upload(person: Any, token: str, path: str, data: bytes, filename: str, **form: str) -> Any:
    body: dict[str, Any] = {"csrf_token": token, **form, "file": (io.BytesIO(data), filename)}
    return person.client.post(path, data=body, base_url="https://localhost")


def test_only_admins_change_the_catalog_and_only_with_the_forms_token(
    app: Any, people: dict[str, str]
) -> None:
    new = {"name": "pages", "adam_id": ADAM_ID, "bundle_id": "com.apple.Pages"}
    for name in ("hal", "aud"):
        person = Person(app, name)
        token = person.csrf("/apps")
        assert person.post("/apps/new", {"csrf_token": token, **new}).status_code == 403
        ipa = make_ipa("com.example.field")
        refused = _upload(person, token, "/apps/upload", ipa, "f.ipa", name="f", kind="ios_inhouse")
        assert refused.status_code == 403
        page = person.get("/apps").get_data(as_text=True)
        assert 'data-form="app-new"' not in page and 'data-form="vpp-token"' not in page
    ada = Person(app, "ada")
    assert ada.post("/apps/new", new).status_code in (400, 403)  # no CSRF token: a forgery
    assert _names(app) == []

    token = ada.csrf("/apps")
    bad = ada.post("/apps/new", {"csrf_token": token, **new, "adam_id": "not-a-number"})
    assert bad.status_code == 400 and "adam_id" in bad.get_data(as_text=True)
    assert _names(app) == []
    done = ada.post("/apps/new", {"csrf_token": token, **new, "version": "14.0"})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert f"added pages (App Store, Adam ID {ADAM_ID})" in done.get_data(as_text=True)
    for page in (done.text, ada.get(f"/apps/{runtime(app).apps.get('pages').id}").text):
        title = page.split("<title>", 1)[1].split("</title>", 1)[0]
        assert "<" not in title and page.count('data-form="') == len(set(_forms(page)))
    again = ada.post("/apps/new", {"csrf_token": token, **new})
    assert again.status_code == 409 and _names(app) == ["pages"]

    ipa = make_ipa("com.example.field", version="2.1")
    up = _upload(ada, token, "/apps/upload", ipa, "field.ipa", name="field", kind="ios_inhouse")
    assert up.status_code == 200 and "uploaded field (In-house (iOS), com.example.field)" in up.text
    pkg = make_pkg()
    up = _upload(ada, token, "/apps/upload", pkg, "agent.pkg", name="agent", kind="macos_pkg",
                 bundle_id="com.example.agent", version="3.0")  # fmt: skip
    assert up.status_code == 200 and "uploaded agent (macOS package" in up.text
    junk = _upload(ada, token, "/apps/upload", b"not a zip" * 100, "x.ipa", name="x",
                   kind="ios_inhouse")  # fmt: skip
    assert junk.status_code == 422 and _names(app) == ["agent", "field", "pages"]
    empty = ada.post("/apps/upload", {"csrf_token": token, "name": "y", "kind": "ios_inhouse"})
    assert empty.status_code == 400 and "choose the .ipa or .pkg file" in empty.text

    service = runtime(app).apps
    field = service.get("field")
    service.assign(field.id, {"target": "tag:field", "behaviour": "available"})
    held = ada.post(f"/apps/{field.id}/delete", {"csrf_token": token})
    assert held.status_code == 409 and "unassign it first" in held.text
    assert "field" in _names(app)
    service.unassign(field.id, "tag:field")
    gone = ada.post(f"/apps/{field.id}/delete", {"csrf_token": token})
    assert gone.status_code == 200 and "deleted field" in gone.text
    assert _names(app) == ["agent", "pages"]
    assert ada.post("/apps/nope/delete", {"csrf_token": token}).status_code == 404

    actions = audit_actions(app)
    for action in ("app.create", "app.upload", "app.delete"):
        assert ("console:ada", action, "ok") in actions, action
    assert any(a[1] == "app.create" and a[2].startswith("refused 400") for a in actions)
    assert any(a[1] == "app.delete" and a[2].startswith("refused 409") for a in actions)


def test_the_content_token_and_licenses_by_serial(
    app: Any,
    people: dict[str, str],
    stoken: str,  # noqa: F811
    fake_vpp: FakeVpp,  # noqa: F811
) -> None:
    hal, ada = Person(app, "hal"), Person(app, "ada")
    token = hal.csrf("/apps")
    denied = _upload(hal, token, "/apps/vpp/token", stoken.encode(), "org.vpptoken")
    assert denied.status_code == 403 and runtime(app).apps.token() is None

    token = ada.csrf("/apps")
    assert "No content token" in ada.get("/apps").text
    bad = _upload(ada, token, "/apps/vpp/token", b"garbage", "org.vpptoken")
    assert 400 <= bad.status_code < 500 and runtime(app).apps.token() is None
    expired = make_token("Example Org", days=-1)
    old = _upload(ada, token, "/apps/vpp/token", expired.encode(), "org.vpptoken")
    assert 400 <= old.status_code < 500 and runtime(app).apps.token() is None
    assert expired not in old.text
    done = _upload(ada, token, "/apps/vpp/token", stoken.encode(), "org.vpptoken")
    page = done.get_data(as_text=True)
    assert done.status_code == 200 and "installed the Apps and Books content token" in page
    assert "Content token of Example Org, valid until" in page and stoken not in page

    synced = ada.post("/apps/vpp/sync", {"csrf_token": token})
    assert synced.status_code == 200 and "synced 3 Apps and Books assets" in synced.text
    body = {
        "name": "pages",
        "kind": "app_store",
        "bundle_id": "com.apple.Pages",
        "adam_id": ADAM_ID,
    }
    pages = runtime(app).apps.create(body)
    path = f"/apps/{pages.id}/licenses"
    assert 'data-form="licenses"' in ada.get(f"/apps/{pages.id}").text
    refused = hal.post(path, {"csrf_token": hal.csrf("/apps"), "serials": "C02AAA"})
    assert refused.status_code == 403 and fake_vpp.assets[ADAM_ID].assigned == set()
    wrong = ada.post(path, {"csrf_token": token, "serials": "C02AAA\nno good!", "go": "assign"})
    assert wrong.status_code == 400 and "not a serial number" in wrong.text
    assert fake_vpp.assets[ADAM_ID].assigned == set()
    given = ada.post(path, {"csrf_token": token, "serials": "C02AAA\nC02BBB", "go": "assign"})
    assert given.status_code == 200 and "is complete" in given.text, given.text
    assert fake_vpp.assets[ADAM_ID].assigned == {"C02AAA", "C02BBB"}
    taken = ada.post(path, {"csrf_token": token, "serials": "C02AAA", "go": "revoke"})
    assert taken.status_code == 200 and "revoking licenses" in taken.text
    assert fake_vpp.assets[ADAM_ID].assigned == {"C02BBB"}
    unknown = ada.post("/apps/vpp/events/nope/follow", {"csrf_token": token})
    assert unknown.status_code == 404

    actions = audit_actions(app)
    for action in ("vpp.token", "vpp.sync", "app.licenses.assign", "app.licenses.revoke"):
        assert ("console:ada", action, "ok") in actions, action
    assert not any(stoken in str(a) for a in runtime(app).admin.store.audit_entries(50))


@pytest.fixture
def browser() -> Iterator[Any]:
    yield from browser_session()


def test_in_the_browser_an_admin_adds_an_app_uploads_the_token_and_assigns_a_license(
    app: Any,
    live_server: str,
    people: Any,
    browser: Any,
    stoken: str,  # noqa: F811
    fake_vpp: FakeVpp,  # noqa: F811
    tmp_path: Any,
) -> None:
    site = live_server.replace("127.0.0.1", "localhost")
    sign_in(browser, site, "ada")
    browser.find_element(By.LINK_TEXT, "Apps").click()
    form = wait_for(browser, "form[data-form=app-new]")
    for field, value in (("name", "pages"), ("adam_id", ADAM_ID), ("bundle_id", "com.apple.Pages")):
        form.find_element(By.NAME, field).send_keys(value)
    form.find_element(By.TAG_NAME, "button").click()
    assert "added pages" in wait_for(browser, ".flash.ok").text
    assert "com.apple.Pages" in wait_for(browser, "tr[data-app=pages]").text

    token_file = tmp_path / "org.vpptoken"
    token_file.write_text(stoken)
    form = browser.find_element(By.CSS_SELECTOR, "form[data-form=vpp-token]")
    form.find_element(By.NAME, "file").send_keys(str(token_file))
    form.find_element(By.TAG_NAME, "button").click()
    assert "installed the Apps and Books content token" in wait_for(browser, ".flash.ok").text
    assert (
        "Content token of Example Org" in browser.find_element(By.CSS_SELECTOR, "[data-token]").text
    )
    assert stoken not in browser.page_source

    browser.find_element(By.LINK_TEXT, "pages").click()
    form = wait_for(browser, "form[data-form=licenses]")
    form.find_element(By.NAME, "serials").send_keys("C02WEB001")
    form.find_element(By.XPATH, ".//button[@value='assign']").click()
    assert "assigning licenses" in wait_for(browser, ".flash.ok").text
    assert fake_vpp.assets[ADAM_ID].assigned == {"C02WEB001"}
