"""GET/DELETE /api/v1/devices/<id>/queue and the enrollment-token endpoints."""

from __future__ import annotations

from tests.api.conftest import last_audit, state


def test_queue_show_and_clear(app, api):
    udid = api.enroll("iOS", serial="Q-SERIAL")
    for request_type in ("ProfileList", "SecurityInfo"):
        body = {"targets": [udid], "command": {"RequestType": request_type}}
        assert api.post("/api/v1/commands", body).status_code == 201
    shown = api.get("/api/v1/devices/Q-SERIAL/queue").get_json()
    assert shown["device_id"] == udid
    assert [c["request_type"] for c in shown["commands"]] == ["ProfileList", "SecurityInfo"]
    assert {c["status"] for c in shown["commands"]} == {"queued"}

    cleared = api.delete(f"/api/v1/devices/{udid}/queue")
    assert cleared.status_code == 200 and cleared.get_json()["cancelled"] == 2
    assert api.get(f"/api/v1/devices/{udid}/queue").get_json()["commands"] == []
    everything = api.get(f"/api/v1/devices/{udid}/queue?all=true").get_json()["commands"]
    assert {c["status"] for c in everything} == {"cancelled"}
    entry = last_audit(app)
    assert entry.action == "queue.clear" and entry.detail["cancelled"] == 2


def test_queue_of_unknown_device_is_404(app, api):
    before = state(app)
    assert api.get("/api/v1/devices/GHOST/queue").status_code == 404
    reply = api.delete("/api/v1/devices/GHOST/queue")
    assert reply.status_code == 404 and "GHOST" in reply.get_json()["error"]
    assert state(app) == before
    assert last_audit(app).outcome.startswith("refused 404")


def test_enrollment_tokens(app, api):
    created = api.post("/api/v1/enrollment-tokens", {"uses": 2, "expires_in": 3600, "tags": ["x"]})
    assert created.status_code == 201, created.get_json()
    token = created.get_json()
    assert token["token"] and token["max_uses"] == 2 and token["tags"] == ["x"]
    listed = api.get("/api/v1/enrollment-tokens").get_json()["tokens"]
    assert [t["id"] for t in listed] == [token["id"]]
    assert "token" not in listed[0]
    assert api.delete(f"/api/v1/enrollment-tokens/{token['id']}").status_code == 200
    assert api.get("/api/v1/enrollment-tokens").get_json()["tokens"][0]["state"] == "revoked"


def test_enrollment_token_refusals(app, api):
    before = state(app)
    for body, named in [
        ({"uses": 0}, "uses"),
        ({"uses": "two"}, "uses"),
        ({"tags": "x"}, "tags"),
        ({"colour": 1}, "colour"),
        ([], "object"),
    ]:
        reply = api.post("/api/v1/enrollment-tokens", body)
        assert reply.status_code == 400 and named in reply.get_json()["error"], body
    missing = api.delete("/api/v1/enrollment-tokens/nope")
    assert missing.status_code == 404 and "nope" in missing.get_json()["error"]
    assert state(app) == before


def test_enrollment_token_refusals_are_audited_like_successes(app, api):
    """A body refused before the token service runs is one row under the same action as a
    token the service made, so the log reads the same whichever layer said no."""
    headers = {**api.headers(), "Content-Type": "application/json"}
    outcomes = []
    for body in (b"{", b"[]", b'{"uses": 0}', b'{"uses": 1}'):
        before = last_audit(app)
        reply = api.client.post("/api/v1/enrollment-tokens", data=body, headers=headers)
        entry = last_audit(app)
        assert entry.id == before.id + 1, body  # one row each
        assert (entry.actor, entry.action) == ("key:test-admin", "enrollment_token.create")
        outcomes.append((reply.status_code, entry.outcome.split(":")[0]))
        if reply.status_code == 201:
            assert entry.targets == [reply.get_json()["id"]]
    assert outcomes == [(400, "refused 400")] * 3 + [(201, "ok")]
