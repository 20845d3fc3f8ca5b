"""Apps and Books through the admin API, on SQLite and PostgreSQL: the content token uploaded
(expiry shown and warned), assets and counts synced, licenses assigned and revoked by serial
with Apple's events followed to completion, 429 honoured, and refusals that change nothing."""

from __future__ import annotations

import stat
import time

from mdmserver.testing.fake_vpp import make_token
from mdmserver.web.runtime import runtime
from tests.api.conftest import state
from tests.apps.conftest import ADAM_ID

TOKEN = "/api/v1/apps/vpp/token"


def _put_token(api, token: str):
    return api.client.put(TOKEN, json={"token": token}, headers=api.headers())


def _store_app(api, name: str = "pages", adam_id: str = ADAM_ID) -> str:
    body = {"name": name, "kind": "app_store", "bundle_id": "com.apple.Pages", "adam_id": adam_id}
    reply = api.post("/api/v1/apps", body)
    assert reply.status_code == 201, reply.get_json()
    return reply.get_json()["id"]


def test_token_upload_shows_expiry_and_keeps_the_secret_private(app, api, stoken):
    assert api.get(TOKEN).get_json() == {
        "installed": False,
        "warnings": ["no Apps and Books content token"],
    }
    reply = _put_token(api, stoken)
    assert reply.status_code == 200, reply.get_json()
    body = reply.get_json()
    assert body["installed"] and body["org_name"] == "Example Org"
    assert 198 <= body["days_left"] <= 200 and body["warnings"] == []
    assert stoken not in reply.get_data(as_text=True)
    path = runtime(app).config.home / "vpp.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stoken not in repr(state(app))  # not in the database either


def test_a_token_near_expiry_is_warned(api, fake_vpp):
    soon = make_token("Example Org", days=10)
    fake_vpp.token = soon
    body = _put_token(api, soon).get_json()
    assert body["days_left"] in (9, 10)
    assert "expires in" in body["warnings"][0]


def test_bad_tokens_are_refused_and_nothing_is_kept(app, api, fake_vpp):
    path = runtime(app).config.home / "vpp.token"
    for token, status, words in [
        ("not base64!", 422, "not a content token"),
        (make_token(days=-1), 422, "expired"),
        (make_token("Stranger"), 422, "9622"),  # Apple does not know it
    ]:
        reply = _put_token(api, token)
        assert reply.status_code == status and words in reply.get_json()["error"], reply.get_json()
        assert not path.exists()
    assert api.client.put(TOKEN, json={"tok": "x"}, headers=api.headers()).status_code == 400


def test_licenses_are_assigned_and_revoked_by_serial(app, api, stoken, fake_vpp):
    assert _put_token(api, stoken).status_code == 200
    app_id = _store_app(api)
    synced = api.post("/api/v1/apps/vpp/assets/sync").get_json()["assets"]
    assert {a["adam_id"]: a["available_count"] for a in synced}[ADAM_ID] == 3

    reply = api.post(f"/api/v1/apps/{app_id}/licenses", {"serials": ["C02BBB", "C02AAA"]})
    assert reply.status_code == 200, reply.get_json()
    event = reply.get_json()
    assert (event["status"], event["event_type"], event["num_completed"]) == (
        "COMPLETE",
        "ASSOCIATE",
        2,
    )
    assert fake_vpp.assets[ADAM_ID].assigned == {"C02AAA", "C02BBB"}  # Apple agrees
    licenses = api.get(f"/api/v1/apps/{app_id}/licenses").get_json()["licenses"]
    assert [(row["serial_number"], row["status"]) for row in licenses] == [
        ("C02AAA", "assigned"),
        ("C02BBB", "assigned"),
    ]
    recorded = api.get(f"/api/v1/apps/vpp/events/{event['event_id']}").get_json()
    assert recorded["status"] == "COMPLETE" and recorded["completed_at"]

    revoked = api.post(f"/api/v1/apps/{app_id}/licenses/revoke", {"serials": ["C02AAA"]})
    assert revoked.status_code == 200 and revoked.get_json()["status"] == "COMPLETE"
    licenses = api.get(f"/api/v1/apps/{app_id}/licenses").get_json()["licenses"]
    assert [row["serial_number"] for row in licenses] == ["C02BBB"]
    assert fake_vpp.assets[ADAM_ID].assigned == {"C02BBB"}
    counts = api.post("/api/v1/apps/vpp/assets/sync").get_json()["assets"]
    assert {a["adam_id"]: a["assigned_count"] for a in counts}[ADAM_ID] == 1


def test_failures_are_kept_per_serial(api, stoken, fake_vpp):
    assert _put_token(api, stoken).status_code == 200
    app_id = _store_app(api)
    serials = ["C02A01", "C02A02", "C02A03", "C02A04"]  # 3 licenses for 4 devices
    event = api.post(f"/api/v1/apps/{app_id}/licenses", {"serials": serials}).get_json()
    assert event["status"] == "FAILED"
    assert [(f["serialNumber"], f["errorNumber"]) for f in event["failures"]] == [("C02A04", 9610)]
    rows = api.get(f"/api/v1/apps/{app_id}/licenses").get_json()["licenses"]
    assert [(r["serial_number"], r["status"]) for r in rows][-1] == ("C02A04", "failed")
    assert rows[-1]["error"].startswith("9610")
    # Revoking a serial that never had a license fails at Apple and leaves no row here.
    revoke = api.post(f"/api/v1/apps/{app_id}/licenses/revoke", {"serials": ["C02A04"]})
    assert revoke.get_json()["failures"][0]["errorNumber"] == 9619
    rows = api.get(f"/api/v1/apps/{app_id}/licenses").get_json()["licenses"]
    assert "C02A04" not in [r["serial_number"] for r in rows]


def test_a_429_is_honoured_and_a_long_one_answered_429(api, stoken, fake_vpp):
    assert _put_token(api, stoken).status_code == 200
    fake_vpp.rate_limit(times=1, retry_after="1")
    started = time.monotonic()
    assert api.post("/api/v1/apps/vpp/assets/sync").status_code == 200
    assert time.monotonic() - started >= 1.0  # it waited as Apple said
    fake_vpp.rate_limit(times=1, retry_after="3600")
    reply = api.post("/api/v1/apps/vpp/assets/sync")
    assert reply.status_code == 429 and "3600" in reply.get_json()["error"]


def test_license_refusals_change_nothing(app, api, stoken, fake_vpp):
    app_id = _store_app(api)
    # No token yet: a clear 409, nothing sent to Apple.
    reply = api.post(f"/api/v1/apps/{app_id}/licenses", {"serials": ["C02AAA"]})
    assert reply.status_code == 409 and "content token" in reply.get_json()["error"]
    assert _put_token(api, stoken).status_code == 200
    before, calls = state(app), len(fake_vpp.requests)
    for body in [{}, {"serials": []}, {"serials": ["bad serial!"]}, {"serials": "C02"}, []]:
        assert api.post(f"/api/v1/apps/{app_id}/licenses", body).status_code == 400
    assert api.post("/api/v1/apps/nope/licenses", {"serials": ["C02AAA"]}).status_code == 404
    fake_vpp.revoked.add(stoken)
    reply = api.post(f"/api/v1/apps/{app_id}/licenses", {"serials": ["C02AAA"]})
    assert reply.status_code == 422 and "revoked" in reply.get_json()["error"]
    assert state(app) == before
    assert len(fake_vpp.requests) == calls + 1  # only the refused associate reached Apple


def test_an_event_left_pending_is_finished_by_the_upkeep(app, api, stoken, fake_vpp):
    from mdmserver.maintenance import run_maintenance
    from mdmserver.web.runtime import runtime

    assert _put_token(api, stoken).status_code == 200
    app_id = _store_app(api)
    fake_vpp.pending_polls = 3
    started = runtime(app).apps.assign_licenses(app_id, {"serials": ["C02AAA"]}, wait=0)
    assert started["status"] == "PENDING"  # the caller stopped waiting
    runs = [run_maintenance(runtime(app).maintenance).get("vpp_events") for _ in range(4)]
    assert runs == [0, 0, 1, 0]  # Apple finished it on the third look; then nothing is left
    rows = api.get(f"/api/v1/apps/{app_id}/licenses").get_json()["licenses"]
    assert [(r["serial_number"], r["status"]) for r in rows] == [("C02AAA", "assigned")]


def test_the_token_expiry_is_a_metric(app, api, stoken):
    before = app.test_client().get("/metrics").get_data(as_text=True).splitlines()
    assert not [ln for ln in before if ln.startswith("mdm_vpp_token_days_left ")]  # no token
    assert _put_token(api, stoken).status_code == 200
    text = app.test_client().get("/metrics").get_data(as_text=True)
    [line] = [ln for ln in text.splitlines() if ln.startswith("mdm_vpp_token_days_left ")]
    assert 198 < float(line.split()[1]) <= 200
