"""/api/v1/profiles over real HTTP: API-key auth, refusals naming the key path with nothing
stored, signed uploads, assignments and per-device status with the device's ErrorChain."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from mdmserver.crypto.ca import dump_cert_pem, dump_key_pem
from mdmserver.web.runtime import runtime
from tests.api.conftest import state
from tests.profiles.conftest import INVALID, PASSCODE, mobileconfig, openssl, write_signer
from tests.profiles.phone import Phone


class Client:
    def __init__(self, base: str, key: str) -> None:
        self.base, self.headers = base + "/api/v1", {"Authorization": f"Bearer {key}"}

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method, self.base + path, headers=self.headers, timeout=30, **kwargs
        )


@pytest.fixture
def api(app, live_server) -> Client:
    new = runtime(app).admin.api_keys.create("profiles-test", actor="test")
    return Client(live_server, new.key)


def test_the_api_needs_an_admin_key(live_server):
    assert requests.get(live_server + "/api/v1/profiles", timeout=30).status_code == 401


@pytest.mark.parametrize(("payload", "path", "words"), INVALID)
def test_invalid_uploads_are_refused_with_the_key_path(app, api, payload, path, words):
    before = state(app)
    reply = api.call("POST", "/profiles/upload?name=bad", data=mobileconfig(payload))
    assert reply.status_code == 422, reply.text
    problems = reply.json()["problems"]
    assert any(p["path"] == path and words in p["message"] for p in problems), problems
    assert state(app) == before


def test_invalid_template_values_are_refused_and_nothing_is_stored(app, api):
    before = state(app)
    body = {"name": "p", "template": "passcode", "variables": {"max_failed_attempts": 1}}
    reply = api.call("POST", "/profiles", json=body)
    assert reply.status_code == 422
    assert reply.json()["problems"][0]["path"] == "PayloadContent[0].maxFailedAttempts"
    assert state(app) == before


def test_signed_upload_assignment_and_device_status(
    app, app_config, api, live_server, pki, tmp_path
):
    write_signer(app_config.home, pki)
    # A .mobileconfig signed elsewhere: the server takes its content and signs it again.
    signer, signer_key = tmp_path / "other.pem", tmp_path / "other.key"
    other_cert, other_key = pki.identity("someone else")
    signer.write_bytes(dump_cert_pem(other_cert))
    signer_key.write_bytes(dump_key_pem(other_key))
    plain = mobileconfig({"PayloadType": PASSCODE, "minLength": 6})
    signed = openssl(
        "cms", "-sign", "-nodetach", "-binary", "-outform", "DER",
        "-signer", str(signer), "-inkey", str(signer_key), data=plain,
    )  # fmt: skip
    created = api.call("POST", "/profiles/upload?name=custom", data=signed)
    assert created.status_code == 201, created.text
    assert created.json()["identifier"] == "com.example.custom"
    bad = api.call("POST", "/profiles", json={"name": "r", "template": "restrictions"})
    assert bad.status_code == 201
    for name in ("custom", "r"):
        reply = api.call("POST", f"/profiles/{name}/assignments", json={"target": "all"})
        assert reply.status_code == 201

    phone = Phone(live_server, pki.device(), pki.ca_file)
    phone.enroll(app)
    phone.run(refuse={"com.mdmserver.profile.r"})
    status = api.call("GET", f"/profiles/status?device={phone.device.udid}").json()["status"]
    by_id = {s["identifier"]: s for s in status}
    assert by_id["com.example.custom"]["status"] == "installed"
    failed = by_id["com.mdmserver.profile.r"]
    assert failed["status"] == "failed"
    assert failed["error"]["ErrorChain"][0]["ErrorCode"] == 4001

    listed = api.call("GET", "/profiles").json()["profiles"]
    assert {p["name"]: p["assignments"] for p in listed} == {"custom": ["all"], "r": ["all"]}
    assert api.call("DELETE", "/profiles/custom/assignments/all").status_code == 200
    removal = [c for c in phone.run() if c["Command"]["RequestType"] == "RemoveProfile"]
    assert [c["Command"]["Identifier"] for c in removal] == ["com.example.custom"]


def test_profile_changes_are_audited(app, api):
    store = runtime(app).admin.store
    created = api.call(
        "POST",
        "/profiles/upload?name=audited",
        data=mobileconfig({"PayloadType": PASSCODE, "minLength": 6}),
    )
    assert created.status_code == 201, created.text
    refused = api.call(
        "POST",
        "/profiles/upload?name=bad",
        data=mobileconfig({"PayloadType": PASSCODE, "minLength": 99}),
    )
    assert refused.status_code == 422
    latest, earlier = store.audit_entries(limit=2)
    assert (earlier.action, earlier.outcome) == ("profiles.upload_profile", "ok")
    assert earlier.actor == "key:profiles-test"
    assert latest.action == "profiles.upload_profile"
    assert latest.outcome.startswith("refused 422")
