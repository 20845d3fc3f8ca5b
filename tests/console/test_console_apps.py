"""The console's apps (issue #17) over HTTP on both databases, and in headless Chromium: the
catalog with kinds, bundle ids, versions and licenses; assigning and unassigning (admins only,
with the form's CSRF token, audited); each device's app state on its page, a failed install
with its ErrorChain and an App Store app that needs a license."""

from __future__ import annotations

import plistlib
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from mdmserver.protocol.commands import new_command
from mdmserver.testing.app_packages import make_ipa
from mdmserver.testing.http import send
from mdmserver.web.runtime import runtime
from tests.console.browser import browser_session
from tests.console.test_browser import sign_in, wait_for
from tests.console.test_console_http import Person, audit_actions
from tests.trust.conftest import enroll

CHAIN = [
    {"ErrorCode": 12064, "ErrorDomain": "MCMDMErrorDomain",
     "LocalizedDescription": "The app “Field” could not be installed.",
     "USEnglishDescription": "The app “Field” could not be installed."},
    {"ErrorCode": 509, "ErrorDomain": "ASDErrorDomain",
     "LocalizedDescription": "Not enough storage to download the app."},
]  # fmt: skip


def _catalog(app: Any) -> tuple[Any, Any]:
    service = runtime(app).apps
    pages = service.create({"name": "pages", "kind": "app_store", "bundle_id": "com.apple.Pages",
                            "adam_id": "361309726", "version": "14.0"})  # fmt: skip
    field = service.upload({"kind": "ios_inhouse", "name": "field"}, make_ipa("com.example.field"))
    return pages, field


def _failing_phone(app: Any, live_server: str, pki: Any, serial: str) -> Any:
    """An enrolled iPhone whose in-house install fails with CHAIN (the App Store app has no
    license for it): the real answers over HTTP, as the reconciler reads them."""
    device = pki.device()
    device.serial_number = serial
    enroll(live_server, device)
    runtime(app).storage.enqueue(new_command("ManagedApplicationList"), [device.udid])
    reply = send(live_server, device.idle())
    while reply.status_code == 200 and reply.content:
        command = plistlib.loads(reply.content)
        kind = command["Command"]["RequestType"]
        if kind == "ManagedApplicationList":
            answer = device.result("Acknowledged", command["CommandUUID"],
                                   ManagedApplicationList={})  # fmt: skip
        elif kind == "InstallApplication":
            answer = device.result("Error", command["CommandUUID"], ErrorChain=CHAIN)
        else:
            answer = device.result("Acknowledged", command["CommandUUID"])
        reply = send(live_server, answer)
    return device


def test_admins_assign_apps_others_cannot(app: Any, people: dict[str, str]) -> None:
    pages, _ = _catalog(app)
    store = runtime(app).apps.store
    auditor = Person(app, "aud")
    listing = auditor.get("/apps").get_data(as_text=True)
    assert "com.apple.Pages" in listing and "App Store" in listing and "14.0" in listing
    assert "In-house (iOS)" in listing and "Assign</button>" not in listing  # look, not act

    helper = Person(app, "hal")
    token = helper.csrf("/devices")
    refused = helper.post(f"/apps/{pages.id}/assignments",
                          {"csrf_token": token, "target": "all", "go": "add"})  # fmt: skip
    assert refused.status_code == 403 and store.assignments(pages.id) == {}

    person = Person(app, "ada")
    forged = person.post(f"/apps/{pages.id}/assignments", {"target": "all", "go": "add"})
    assert forged.status_code in (400, 403) and store.assignments(pages.id) == {}
    token = person.csrf("/apps")
    bad = person.post(f"/apps/{pages.id}/assignments",
                      {"csrf_token": token, "target": "everyone", "go": "add"})  # fmt: skip
    assert bad.status_code == 400 and "target" in bad.get_data(as_text=True)
    assert store.assignments(pages.id) == {}
    done = person.post(f"/apps/{pages.id}/assignments",
                       {"csrf_token": token, "target": "tag:sales", "behaviour": "available",
                        "go": "add"})  # fmt: skip
    assert done.status_code == 200 and "assigned to tag:sales (available)" in done.get_data(
        as_text=True
    )
    assert store.assignments(pages.id) == {"tag:sales": "available"}
    gone = person.post(f"/apps/{pages.id}/assignments",
                       {"csrf_token": token, "target": "tag:sales", "go": "remove"})  # fmt: skip
    assert gone.status_code == 200 and store.assignments(pages.id) == {}
    missing = person.post(f"/apps/{pages.id}/assignments",
                          {"csrf_token": token, "target": "tag:sales", "go": "remove"})  # fmt: skip
    assert missing.status_code == 404
    assert person.get("/apps/nope").status_code == 404
    actions = audit_actions(app)
    assert ("console:ada", "app.assign", "ok") in actions
    assert ("console:ada", "app.unassign", "ok") in actions
    assert any(a[1] == "app.assign" and a[2].startswith("refused 400") for a in actions)


def test_the_device_page_shows_each_apps_state_with_its_error_chain(
    app: Any, live_server: str, pki: Any, people: dict[str, str]
) -> None:
    pages, field = _catalog(app)
    service = runtime(app).apps
    for found in (pages, field):
        service.assign(found.id, {"target": "all"})
    device = _failing_phone(app, live_server, pki, "C02APPS00001")
    page = Person(app, "hal").get(f"/devices/{device.udid}").get_data(as_text=True)
    assert "Managed apps" in page
    assert "needs license" in page and "failed" in page
    assert "MCMDMErrorDomain 12064: The app “Field” could not be installed." in page
    assert "ASDErrorDomain 509" in page and "tried again after" in page
    detail = Person(app, "aud").get(f"/apps/{field.id}").get_data(as_text=True)
    assert device.udid in detail and "1 failed" in detail


@pytest.fixture
def browser() -> Iterator[Any]:
    yield from browser_session()


@pytest.fixture
def site(live_server: str) -> str:
    return live_server.replace("127.0.0.1", "localhost")  # a secure origin for the cookie


def test_in_the_browser_an_admin_assigns_an_app_and_reads_a_devices_app_state(
    app: Any, live_server: str, site: str, pki: Any, people: Any, browser: Any
) -> None:
    pages, field = _catalog(app)
    runtime(app).apps.assign(field.id, {"target": "all"})
    device = _failing_phone(app, live_server, pki, "C02APPS00002")
    sign_in(browser, site, "ada")

    browser.find_element(By.LINK_TEXT, "Apps").click()
    row = wait_for(browser, "tr[data-app=pages]")
    assert "com.apple.Pages" in row.text and "nobody" in row.text
    row.find_element(By.NAME, "target").send_keys("tag:field-team")
    Select(row.find_element(By.NAME, "behaviour")).select_by_value("available")
    row.find_element(By.XPATH, ".//button[text()='Assign']").click()
    assert "pages assigned to tag:field-team (available)" in wait_for(browser, ".flash.ok").text
    targets = browser.find_element(By.CSS_SELECTOR, "tr[data-app=pages] [data-targets]").text
    assert "tag:field-team (available)" in targets
    assert runtime(app).apps.store.assignments(pages.id) == {"tag:field-team": "available"}

    browser.find_element(By.LINK_TEXT, "field").click()
    state = wait_for(browser, "[data-app-states] tbody tr")
    assert device.udid in state.text and "failed" in state.text
    state.find_element(By.LINK_TEXT, device.udid).click()
    app_row = wait_for(browser, "[data-device-apps] tr[data-app=field]")
    assert app_row.find_element(By.CSS_SELECTOR, "[data-state]").text.startswith("failed")
    assert "ASDErrorDomain 509: Not enough storage" in app_row.text
