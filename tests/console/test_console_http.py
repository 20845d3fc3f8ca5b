"""The console over HTTP: signing in, CSRF, roles and the device actions, on both databases.
(Browser tests in test_browser.py drive the same pages in Chromium.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from mdmserver.web.runtime import runtime
from tests.console.conftest import PASSWORD
from tests.trust.conftest import enroll


class Person:
    """A browser-like client of the console (cookies, the form's CSRF token)."""

    def __init__(self, app: Any, name: str | None = None) -> None:
        self.client = app.test_client()
        self.client.environ_base["wsgi.url_scheme"] = "https"
        if name is not None:
            reply = self.login(name, PASSWORD)
            assert reply.status_code == 302, reply.text

    def csrf(self, path: str = "/login") -> str:
        page = self.client.get(path, base_url="https://localhost").get_data(as_text=True)
        found = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert found, page[:500]
        return found.group(1)

    def login(self, name: str, password: str) -> Any:
        token = self.csrf()
        return self.post("/login", {"name": name, "password": password, "csrf_token": token})

    def get(self, path: str) -> Any:
        return self.client.get(path, base_url="https://localhost")

    def post(self, path: str, form: dict[str, str]) -> Any:
        return self.client.post(path, data=form, base_url="https://localhost")

    def act(self, device: str, action: str, **form: str) -> Any:
        token = self.csrf(f"/devices/{device}")
        return self.post(f"/devices/{device}/actions/{action}", {"csrf_token": token, **form})


@pytest.fixture
def phone(live_server: str, pki: Any) -> Any:
    device = pki.device()
    enroll(live_server, device)
    return device


def pending(app: Any, udid: str) -> list[str]:
    return [item.request_type for item in runtime(app).storage.queue(udid)]


def audit_actions(app: Any) -> list[tuple[str, str, str]]:
    return [(e.actor, e.action, e.outcome) for e in runtime(app).admin.store.audit_entries(50)]


def test_pages_need_a_signed_in_person(app: Any) -> None:
    anonymous = Person(app)
    for path in ("/", "/devices", "/devices.csv", "/audit", "/enrollment"):
        reply = anonymous.get(path)
        assert reply.status_code == 302, path
        assert reply.headers["Location"].startswith("/login"), path


def test_sign_in_sets_a_strict_secure_cookie_and_wrong_passwords_are_limited(
    app: Any, people: dict[str, str]
) -> None:
    person = Person(app)
    reply = person.login("ada", PASSWORD)
    assert reply.status_code == 302
    cookie = reply.headers["Set-Cookie"]
    for flag in ("Secure", "HttpOnly", "SameSite=Strict"):
        assert flag in cookie
    assert person.get("/").status_code == 200

    guesser = Person(app)
    statuses = [guesser.login("hal", f"guess-{i}-aaaaaaaa").status_code for i in range(5)]
    assert statuses == [401] * 5
    limited = guesser.login("hal", PASSWORD)  # even the right password, once limited
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    _, by_name = runtime(app).admin.console_users.store.failures_since(
        "127.0.0.1", "hal", datetime(2000, 1, 1, tzinfo=UTC)
    )
    assert by_name == 5  # the limited attempt is not counted as a guess


def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(
    app: Any, people: dict[str, str], phone: Any
) -> None:
    person = Person(app, "ada")
    before, audit_before = pending(app, phone.udid), audit_actions(app)
    reply = person.post(f"/devices/{phone.udid}/actions/lock", {"message": "lost"})
    assert reply.status_code == 400
    assert "CSRF" in reply.get_data(as_text=True)
    wrong = person.post(
        f"/devices/{phone.udid}/actions/lock", {"message": "lost", "csrf_token": "forged"}
    )
    assert wrong.status_code == 400
    assert pending(app, phone.udid) == before
    assert audit_actions(app) == audit_before


def test_helpdesk_locks_but_cannot_wipe_or_send_bulk_commands(
    app: Any, people: dict[str, str], phone: Any
) -> None:
    helper = Person(app, "hal")
    locked = helper.act(phone.udid, "lock", message="Call IT", phone="+1 555 0100")
    assert locked.status_code == 200, locked.get_data(as_text=True)[:300]
    assert pending(app, phone.udid) == ["DeviceLock"]
    assert ("console:hal", "command.send", "ok") in audit_actions(app)

    wipe = helper.act(phone.udid, "erase", confirm_name="iPhone 0001")
    assert wipe.status_code == 403
    token = helper.csrf("/devices")
    bulk = helper.post("/commands", {"csrf_token": token, "request_type": "RestartDevice"})
    assert bulk.status_code == 403
    page = helper.get(f"/devices/{phone.udid}").get_data(as_text=True)
    assert "Erase this device" not in page
    assert pending(app, phone.udid) == ["DeviceLock"]


def test_an_auditor_can_look_and_export_but_not_act(
    app: Any, people: dict[str, str], phone: Any
) -> None:
    auditor = Person(app, "aud")
    assert auditor.get(f"/devices/{phone.udid}").status_code == 200
    for action in ("lock", "restart", "push", "refresh", "erase"):
        assert auditor.act(phone.udid, action).status_code == 403, action
    assert pending(app, phone.udid) == []
    export = auditor.get("/devices.csv")
    assert export.status_code == 200
    lines = export.get_data(as_text=True).splitlines()
    assert lines[0].startswith("id,serial_number")
    assert any(line.startswith(phone.udid) for line in lines[1:])
    helper = Person(app, "hal")
    assert helper.get("/devices.csv").status_code == 403


def test_erase_needs_the_device_name_typed(app: Any, people: dict[str, str], phone: Any) -> None:
    person = Person(app, "ada")
    refused = person.act(phone.udid, "erase", confirm_name="iphone")
    assert refused.status_code == 400
    assert "to confirm the erase; nothing was sent" in refused.get_data(as_text=True)
    assert pending(app, phone.udid) == []
    name = f"{phone.model_name} {phone.serial_number[-4:]}"
    done = person.act(phone.udid, "erase", confirm_name=name)
    assert done.status_code == 200
    assert pending(app, phone.udid) == ["EraseDevice"]


def test_a_new_account_must_change_its_password_and_a_reset_ends_sessions(
    app: Any, people: dict[str, str]
) -> None:
    users = runtime(app).admin.console_users
    first = users.create("newbie", "auditor", actor="test").password
    person = Person(app)
    assert person.login("newbie", first).status_code == 302
    assert person.get("/devices").headers["Location"] == "/account/password"
    token = person.csrf("/account/password")
    changed = person.post(
        "/account/password",
        {"csrf_token": token, "current": first, "password": PASSWORD, "confirm": PASSWORD},
    )
    assert changed.status_code == 302
    assert person.get("/devices").status_code == 200

    users.reset_password("newbie", actor="test")
    assert person.get("/devices").status_code == 302  # the old session has ended


def test_sign_in_never_redirects_off_site(app: Any, people: dict[str, str]) -> None:
    person = Person(app)
    token = person.csrf()
    reply = person.client.post(
        "/login?next=//evil.example/",
        data={"name": "ada", "password": PASSWORD, "csrf_token": token},
        base_url="https://localhost",
    )
    assert reply.status_code == 302
    assert reply.headers["Location"] == "/"


def test_policy_preview_counts_the_flips_and_only_an_admin_saves(
    app: Any, people: dict[str, str], live_server: str, pki: Any
) -> None:
    from tests.trust.conftest import CLEAN

    no_passcode = {**CLEAN, "SecurityInfo": {"SecurityInfo": {"PasscodePresent": False}}}
    for answers in (CLEAN, CLEAN, no_passcode):
        enroll(live_server, pki.device(), answers)
    seen = runtime(app).seen
    if seen is not None:
        seen.flush()  # last seen is written in batches; the preview reads it from the database
    strict = '{"passcode_present": true}'

    helper = Person(app, "hal")
    token = helper.csrf("/compliance")
    refused = helper.post("/compliance", {"csrf_token": token, "policy": strict, "go": "save"})
    assert refused.status_code == 403

    admin_person = Person(app, "ada")
    token = admin_person.csrf("/compliance")

    # Under the default policy two devices are compliant and one (no passcode) is not.
    def preview(policy: str) -> str:
        reply = admin_person.post(
            "/compliance", {"csrf_token": token, "policy": policy, "go": "preview"}
        )
        assert reply.status_code == 200
        return reply.get_data(as_text=True)

    lenient = preview('{"passcode_present": false}')
    assert 'data-flip="compliant">1<' in lenient
    assert 'data-flip="noncompliant">0<' in lenient
    no_pages = preview('{"forbidden_apps": ["com.apple.Pages"]}')
    assert 'data-flip="noncompliant">2<' in no_pages
    assert 'data-flip="compliant">0<' in no_pages
    bad = admin_person.post(
        "/compliance", {"csrf_token": token, "policy": '{"passcode_present": "maybe"}'}
    )
    assert bad.status_code == 422
    saved = admin_person.post("/compliance", {"csrf_token": token, "policy": strict, "go": "save"})
    assert saved.status_code == 302
    assert ("console:ada", "compliance.policy.set", "ok") in audit_actions(app)
    assert ("console:hal", "compliance.policy.set", "ok") not in audit_actions(app)


def test_a_command_to_a_selection_of_devices_is_previewed_then_sent(
    app: Any, people: dict[str, str], live_server: str, pki: Any
) -> None:
    chosen, other = pki.device(), pki.device()
    chosen.serial_number, other.serial_number = "C02SEL000001", "C02SEL000002"
    for device in (chosen, other):
        enroll(live_server, device)
    person = Person(app, "ada")
    token = person.csrf("/commands")
    form = {"csrf_token": token, "request_type": "RestartDevice", "targets": chosen.udid}
    preview = person.post("/commands", form)
    assert preview.status_code == 200
    assert 'data-reach="1"' in preview.get_data(as_text=True)
    assert pending(app, chosen.udid) == []
    sent = person.post("/commands", {**form, "confirm": "1"})
    assert sent.status_code == 302
    assert pending(app, chosen.udid) == ["RestartDevice"]
    assert pending(app, other.udid) == []
    unknown = person.post("/commands", {**form, "targets": "NO-SUCH-DEVICE", "confirm": "1"})
    assert unknown.status_code == 404


def test_every_form_field_has_a_label(app: Any, people: dict[str, str], phone: Any) -> None:
    """Screen readers name each control: a <label for=…>, a wrapping <label> or aria-label."""
    from html.parser import HTMLParser

    class Controls(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.depth = 0
            self.labelled: set[str] = set()
            self.unlabelled: list[str] = []
            self.pending: list[tuple[str, str | None]] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found = dict(attrs)
            if tag == "label":
                self.depth += 1
                if found.get("for"):
                    self.labelled.add(found["for"] or "")
            elif (
                tag in ("input", "select", "textarea")
                and found.get("type") != "hidden"
                and not (self.depth or found.get("aria-label"))
            ):
                self.pending.append((found.get("name") or "?", found.get("id")))

        def handle_endtag(self, tag: str) -> None:
            if tag == "label":
                self.depth -= 1

    person = Person(app, "ada")
    pages = ["/", "/devices", f"/devices/{phone.udid}", "/commands", "/compliance"]
    pages += ["/enrollment", "/audit", "/profiles", "/profiles/new/passcode", "/settings"]
    pages += ["/declarations"]
    for path in pages:
        page = person.get(path)
        assert page.status_code == 200, path
        parser = Controls()
        parser.feed(page.get_data(as_text=True))
        missing = [name for name, ident in parser.pending if ident not in parser.labelled]
        assert missing == [], f"{path}: controls without a label: {missing}"
