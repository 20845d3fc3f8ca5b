"""The console's profiles and settings pages over HTTP, on both databases: who may change
them, what a change does, and that refusals change nothing."""

from __future__ import annotations

import io
from typing import Any

from mdmserver.testing.apns_pki import issue_push_cert, make_ca, new_mdm_topic
from mdmserver.web.runtime import runtime
from tests.console.test_console_http import Person, audit_actions


def test_an_admin_makes_and_assigns_a_profile_from_a_template_and_helpdesk_cannot(
    app: Any, people: dict[str, str]
) -> None:
    profiles = runtime(app).profiles.admin
    helper = Person(app, "hal")
    token = helper.csrf("/profiles")
    refused = helper.post(
        "/profiles/new/passcode", {"csrf_token": token, "name": "pin", "var.min_length": "6"}
    )
    assert refused.status_code == 403
    assert profiles.list() == []

    person = Person(app, "ada")
    form = person.get("/profiles/new/passcode").get_data(as_text=True)
    assert 'name="var.min_length"' in form
    token = person.csrf("/profiles/new/passcode")
    bad = person.post(
        "/profiles/new/passcode", {"csrf_token": token, "name": "pin", "var.min_length": "many"}
    )
    assert bad.status_code == 400
    assert profiles.list() == []
    made = person.post(
        "/profiles/new/passcode", {"csrf_token": token, "name": "pin", "var.min_length": "6"}
    )
    assert made.status_code == 302, made.get_data(as_text=True)[:400]
    [profile] = profiles.list()
    assert profile.name == "pin"
    assigned = person.post(
        f"/profiles/{profile.id}/assignments",
        {"csrf_token": token, "target": "tag:sales", "go": "add"},
    )
    assert assigned.status_code == 200
    assert profiles.store.assignments(profile.id) == ["tag:sales"]
    page = person.get(f"/profiles/{profile.id}").get_data(as_text=True)
    assert "tag:sales" in page
    actions = audit_actions(app)
    assert ("console:ada", "profiles.create_profile", "ok") in actions
    assert ("console:ada", "profiles.assign", "ok") in actions
    assert any(
        a[1] == "profiles.create_profile" and a[2].startswith("refused 400") for a in actions
    )


def test_an_uploaded_profile_that_fails_apples_schema_is_refused_with_the_key_path(
    app: Any, people: dict[str, str]
) -> None:
    import plistlib

    bad = plistlib.dumps(
        {
            "PayloadType": "Configuration",
            "PayloadVersion": 1,
            "PayloadIdentifier": "com.example.bad",
            "PayloadUUID": "0E2C1C52-8C2A-4C1A-9A55-3D7D2F3E4F51",
            "PayloadDisplayName": "Bad",
            "PayloadContent": [
                {
                    "PayloadType": "com.apple.mobiledevice.passwordpolicy",
                    "PayloadVersion": 1,
                    "PayloadIdentifier": "com.example.bad.pin",
                    "PayloadUUID": "1E2C1C52-8C2A-4C1A-9A55-3D7D2F3E4F51",
                    "minLength": "six",
                }
            ],
        }
    )
    person = Person(app, "ada")
    token = person.csrf("/profiles")
    reply = person.client.post(
        "/profiles/upload",
        data={"csrf_token": token, "name": "bad", "file": (io.BytesIO(bad), "bad.mobileconfig")},
        base_url="https://localhost",
        content_type="multipart/form-data",
    )
    assert reply.status_code == 422
    assert "minLength" in reply.get_data(as_text=True)
    assert runtime(app).profiles.admin.list() == []


def test_settings_api_keys_and_push_certificate_for_admins_only(
    app: Any, people: dict[str, str]
) -> None:
    helper = Person(app, "hal")
    token = helper.csrf("/settings")
    assert helper.post("/settings/api-keys", {"csrf_token": token, "name": "x"}).status_code == 403

    person = Person(app, "ada")
    token = person.csrf("/settings")
    made = person.post("/settings/api-keys", {"csrf_token": token, "name": "ci", "scope": "trust"})
    assert made.status_code == 200
    page = made.get_data(as_text=True)
    key = page.split("data-new-key>")[1].split("<")[0]
    assert runtime(app).admin.api_keys.authenticate(key).scope == "trust"
    assert key not in person.get("/settings").get_data(as_text=True)  # shown once
    revoked = person.post("/settings/api-keys/ci/revoke", {"csrf_token": token})
    assert revoked.status_code == 200
    assert runtime(app).admin.api_keys.authenticate(key) is None

    config = runtime(app).config
    topic = new_mdm_topic()
    push = issue_push_cert(make_ca(), topic)

    def upload(data: bytes) -> Any:
        return person.client.post(
            "/settings/push-certificate",
            data={"csrf_token": token, "file": (io.BytesIO(data), "push.pem")},
            base_url="https://localhost",
            content_type="multipart/form-data",
        )

    refused = upload(push.cert_pem)  # no key: not usable
    assert refused.status_code == 422
    assert not config.resolved_push_cert_file.exists()
    installed = upload(push.cert_pem + push.key_pem)
    assert installed.status_code == 200, installed.get_data(as_text=True)[:300]
    assert topic in person.get("/settings").get_data(as_text=True)
    other = issue_push_cert(make_ca(), new_mdm_topic())
    changed = upload(other.cert_pem + other.key_pem)  # another topic, without force
    assert changed.status_code == 422
    assert topic in person.get("/settings").get_data(as_text=True)
    assert ("console:ada", "push_cert.install", "ok") in audit_actions(app)


def test_declarations_are_saved_validated_and_assigned_by_admins_only(
    app: Any, people: dict[str, str], live_server: str, pki: Any
) -> None:
    from tests.ddm.conftest import PASSCODE, ddm, enroll, sync_commands

    store = runtime(app).ddm.store
    device = pki.device()
    enroll(live_server, device)
    sync_commands(live_server, device)

    helper = Person(app, "hal")
    token = helper.csrf("/declarations")
    form = {
        "identifier": "pin",
        "type": PASSCODE,
        "payload": '{"RequireAlphanumericPasscode": true}',
    }
    assert helper.post("/declarations", {"csrf_token": token, **form}).status_code == 403
    assert store.get("pin") is None

    person = Person(app, "ada")
    token = person.csrf("/declarations")
    wrong = person.post(
        "/declarations", {**form, "csrf_token": token, "payload": '{"MinimumLength": "six"}'}
    )
    assert wrong.status_code == 422
    assert "MinimumLength" in wrong.get_data(as_text=True)
    assert store.get("pin") is None
    saved = person.post("/declarations", {"csrf_token": token, **form})
    assert saved.status_code == 200, saved.get_data(as_text=True)[:300]
    assert store.get("pin") is not None
    assigned = person.post(
        "/declarations/pin/assignments", {"csrf_token": token, "target": "all", "go": "add"}
    )
    assert assigned.status_code == 200
    assert store.assignments("pin") == ["all"]
    [tokens] = sync_commands(live_server, device)  # the device is told to sync, once
    assert tokens["DeclarationsToken"]
    items = ddm(live_server, device, "declaration-items").json()
    assert "pin" in {c["Identifier"] for c in items["Declarations"]["Configurations"]}
    page = person.get(f"/devices/{device.udid}").get_data(as_text=True)
    assert "pin" in page and "declarative management on" in page
    actions = audit_actions(app)
    assert ("console:ada", "declarations.put", "ok") in actions
    assert ("console:ada", "declarations.assign", "ok") in actions
    assert any(a[1] == "declarations.put" and a[2].startswith("refused 422") for a in actions)
