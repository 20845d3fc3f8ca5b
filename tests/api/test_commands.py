"""POST /api/v1/commands and GET /api/v1/commands/<uuid>: catalog checks before anything is
stored, one UUID per send, and the device's answer read back as JSON."""

from __future__ import annotations

import base64
import plistlib

from mdmserver.testing.http import command_of, send
from mdmserver.web.runtime import runtime
from tests.api.conftest import last_audit, make_key, state


def _queued_plist(app, command_uuid: str) -> dict:
    from sqlalchemy import select

    from mdmserver.storage.sql.schema import commands

    with runtime(app).engine.connect() as conn:
        raw = conn.execute(select(commands.c.plist).where(commands.c.uuid == command_uuid)).scalar()
    return plistlib.loads(raw)["Command"]


def test_lock_one_device(app, api):
    udid = api.enroll("iOS")
    reply = api.post(
        "/api/v1/commands",
        {"targets": [udid], "command": {"RequestType": "DeviceLock", "Message": "Call IT"}},
    )
    assert reply.status_code == 201, reply.get_json()
    body = reply.get_json()
    assert body["targets"] == {udid: udid} and body["request_type"] == "DeviceLock"
    assert _queued_plist(app, body["command_uuid"]) == {
        "RequestType": "DeviceLock",
        "Message": "Call IT",
    }
    entry = last_audit(app)
    assert (entry.actor, entry.action, entry.targets, entry.outcome) == (
        "key:test-admin",
        "command.send",
        [udid],
        "ok",
    )
    assert entry.detail["command_uuid"] == body["command_uuid"]


def test_targets_by_serial_and_filter_share_one_uuid(app, api):
    a = api.enroll("iOS", serial="SERIAL-A")
    b = api.enroll("iOS", os_version="16.0")
    mac = api.enroll("macOS")
    api.enroll("iOS", active=False)  # pending: still sendable
    checked_out = api.enroll("iOS")
    from mdmserver.protocol.enrollment_id import EnrollmentIdentity, EnrollmentType

    runtime(app).storage.check_out(EnrollmentIdentity(EnrollmentType.DEVICE, checked_out))

    by_serial = api.post(
        "/api/v1/commands", {"targets": ["SERIAL-A"], "command": {"RequestType": "ProfileList"}}
    )
    assert by_serial.get_json()["targets"] == {a: a}

    reply = api.post(
        "/api/v1/commands",
        {"filter": {"platform": "iOS"}, "command": {"RequestType": "SecurityInfo"}, "priority": 5},
    )
    assert reply.status_code == 201, reply.get_json()
    body = reply.get_json()
    assert a in body["targets"] and b in body["targets"] and mac not in body["targets"]
    assert body["skipped"] == [checked_out]
    statuses = runtime(app).storage.command_targets(body["command_uuid"])
    assert len(statuses) == 3 and {s.priority for s in statuses} == {5}


def test_base64_data_and_iso_dates_follow_the_schema(app, api):
    udid = api.enroll("iOS")
    profile = plistlib.dumps({"PayloadType": "Configuration", "PayloadContent": []})
    reply = api.post(
        "/api/v1/commands",
        {
            "targets": [udid],
            "command": {
                "RequestType": "InstallProfile",
                "Payload": base64.b64encode(profile).decode(),
            },
            "expires_in": 3600,
        },
    )
    assert reply.status_code == 201, reply.get_json()
    assert _queued_plist(app, reply.get_json()["command_uuid"])["Payload"] == profile
    [item] = runtime(app).storage.command_targets(reply.get_json()["command_uuid"])
    assert item.expires_at is not None


def test_clear_passcode_carries_the_stored_unlock_token(app, api):
    udid = api.enroll("iOS", unlock_token=b"\x01\x02secret")
    reply = api.post(
        "/api/v1/commands", {"targets": [udid], "command": {"RequestType": "ClearPasscode"}}
    )
    assert reply.status_code == 201, reply.get_json()
    plist = _queued_plist(app, reply.get_json()["command_uuid"])
    assert plist["UnlockToken"] == b"\x01\x02secret"


def test_lost_mode_says_supervision_is_unknown(app, api):
    udid = api.enroll("iOS")
    reply = api.post(
        "/api/v1/commands",
        {"targets": [udid], "command": {"RequestType": "EnableLostMode", "Message": "Lost"}},
    )
    assert reply.status_code == 201, reply.get_json()
    [warning] = reply.get_json()["warnings"]
    assert "supervis" in warning["message"] and "not known" in warning["message"]


def test_any_other_request_type_is_checked_by_its_schema(app, api):
    udid = api.enroll("iOS")
    ok = api.post(
        "/api/v1/commands",
        {
            "targets": [udid],
            "command": {"RequestType": "DeviceInformation", "Queries": ["UDID", "OSVersion"]},
        },
    )
    assert ok.status_code == 201
    bad = api.post(
        "/api/v1/commands",
        {"targets": [udid], "command": {"RequestType": "DeviceInformation", "Queries": "UDID"}},
    )
    assert bad.status_code == 422
    assert bad.get_json()["problems"][0]["path"] == "command.Queries"


def _refused(app, api, body, status: int, *named: str, raw: bytes | None = None):
    before = state(app)
    if raw is not None:
        reply = api.client.post(
            "/api/v1/commands",
            data=raw,
            headers={**api.headers(), "Content-Type": "application/json"},
        )
    else:
        reply = api.post("/api/v1/commands", body)
    assert reply.status_code == status, reply.get_json()
    message = reply.get_json()["error"]
    for word in named:
        assert word in message, message
    assert state(app) == before, "a refused command changed the database"
    return reply.get_json()


def test_refusals_store_nothing(app, api):
    mac = api.enroll("macOS", os_version="14.4")
    phone = api.enroll("iOS", os_version="17.4")
    tv = api.enroll("tvOS", os_version="17.0")
    no_token = api.enroll("iOS", unlock_token=None)
    erase_mac = {"RequestType": "EraseDevice"}

    _refused(app, api, {"targets": [mac], "command": erase_mac}, 422, "PIN", "macOS", mac)
    _refused(
        app,
        api,
        {"targets": [mac], "command": {"RequestType": "DeviceLock", "PIN": "12ab"}},
        422,
        "command.PIN",
        "6 digits",
    )
    body = _refused(
        app,
        api,
        {"targets": [phone, mac], "command": {"RequestType": "DeviceLock"}},
        422,
        "command.PIN",
    )
    assert body["problems"][0]["path"] == "command.PIN"
    _refused(
        app,
        api,
        {"targets": [tv], "command": {"RequestType": "DeviceLock"}},
        422,
        "not supported on tvOS",
    )
    _refused(
        app,
        api,
        {"targets": [phone], "command": {"RequestType": "DeviceLock", "PIN": "123456"}},
        422,
        "command.PIN",
        "iOS",
    )
    _refused(
        app,
        api,
        {"targets": [phone], "command": {"RequestType": "ScheduleOSUpdate", "Updates": "now"}},
        422,
        "command.Updates",
        "array",
    )
    _refused(
        app,
        api,
        {"targets": [no_token], "command": {"RequestType": "ClearPasscode"}},
        422,
        "UnlockToken",
    )
    _refused(
        app,
        api,
        {"targets": [phone, no_token], "command": {"RequestType": "ClearPasscode"}},
        422,
        "one device",
    )
    _refused(
        app,
        api,
        {"targets": [phone], "command": {"RequestType": "ClearPasscode", "UnlockToken": "AA=="}},
        422,
        "command.UnlockToken",
    )
    _refused(
        app,
        api,
        {"targets": [phone], "command": {"RequestType": "InstallProfile", "Payload": "%%"}},
        422,
        "command.Payload",
        "base64",
    )
    _refused(
        app,
        api,
        {"targets": [phone], "command": {"RequestType": "EnableLostMode"}},
        422,
        "Message",
    )
    _refused(app, api, {"targets": [phone], "command": {"RequestType": "Bogus"}}, 422, "Bogus")
    _refused(
        app,
        api,
        {"targets": [phone, "GHOST-1"], "command": {"RequestType": "DeviceLock"}},
        404,
        "GHOST-1",
    )
    _refused(app, api, {"filter": {"platform": "visionOS"}, "command": erase_mac}, 422, "filter")
    _refused(app, api, {"filter": {"os": "17"}, "command": erase_mac}, 400, "filter.os")
    _refused(app, api, {"targets": [phone]}, 400, "command")
    _refused(app, api, {"command": erase_mac}, 400, "targets", "filter")
    _refused(app, api, {"targets": [], "command": erase_mac}, 400, "targets")
    _refused(app, api, {"targets": [phone], "command": erase_mac, "priority": "high"}, 400)
    _refused(app, api, {"targets": [phone], "command": erase_mac, "expires_in": 0}, 400)
    _refused(app, api, {"targets": [phone], "command": {"Message": "x"}}, 400, "RequestType")
    _refused(app, api, [1, 2], 400, "JSON object")
    _refused(app, api, None, 400, "malformed JSON", raw=b'{"targets": [')
    _refused(app, api, None, 400, "empty", raw=b"")

    refusal = last_audit(app)
    assert refusal.outcome.startswith("refused 400") and refusal.actor == "key:test-admin"


def test_checked_out_target_is_409(app, api):
    from mdmserver.protocol.enrollment_id import EnrollmentIdentity, EnrollmentType

    udid = api.enroll("iOS")
    runtime(app).storage.check_out(EnrollmentIdentity(EnrollmentType.DEVICE, udid))
    _refused(app, api, {"targets": [udid], "command": {"RequestType": "DeviceLock"}}, 409, udid)


def test_no_key_or_wrong_scope_stores_nothing(app, api):
    udid = api.enroll("iOS")
    body = {"targets": [udid], "command": {"RequestType": "DeviceLock"}}
    before = state(app)
    assert app.test_client().post("/api/v1/commands", json=body).status_code == 401
    metrics_key = make_key(app, "scraper", "metrics")
    assert api.post("/api/v1/commands", body, key=metrics_key).status_code == 403
    after = state(app)
    after.pop("api_keys"), before.pop("api_keys")
    assert after == before


def test_unknown_command_status_is_404(api):
    reply = api.get("/api/v1/commands/NOT-A-UUID")
    assert reply.status_code == 404 and "NOT-A-UUID" in reply.get_json()["error"]


def test_device_lock_round_trip_over_http(app, live_server, pki, api):
    device = pki.device()
    assert send(live_server, device.authenticate()).status_code == 200
    assert send(live_server, device.token_update()).status_code == 200

    reply = api.post(
        "/api/v1/commands",
        {"targets": [device.udid], "command": {"RequestType": "DeviceLock", "Message": "Hi"}},
    )
    assert reply.status_code == 201, reply.get_json()
    command_uuid = reply.get_json()["command_uuid"]
    queued = api.get(f"/api/v1/commands/{command_uuid}").get_json()
    assert queued["targets"][0]["status"] == "queued"

    # Other features may queue their own commands at enrollment: answer those first.
    received = command_of(send(live_server, device.idle()))
    for _ in range(10):
        if received["CommandUUID"] == command_uuid:
            break
        received = command_of(
            send(live_server, device.result("Acknowledged", received["CommandUUID"]))
        )
    assert received["CommandUUID"] == command_uuid
    assert received["Command"] == {"RequestType": "DeviceLock", "Message": "Hi"}
    assert api.get(f"/api/v1/commands/{command_uuid}").get_json()["targets"][0]["status"] == "sent"

    answer = device.result("Acknowledged", command_uuid, MessageResult=b"\x00\xff")
    assert send(live_server, answer).status_code == 200

    body = api.get(f"/api/v1/commands/{command_uuid}").get_json()
    [target] = body["targets"]
    assert body["counts"] == {"acknowledged": 1} and body["request_type"] == "DeviceLock"
    assert target["device_id"] == device.udid and target["status"] == "acknowledged"
    assert target["result"]["Status"] == "Acknowledged"
    assert target["result"]["CommandUUID"] == command_uuid
    assert target["result"]["MessageResult"] == base64.b64encode(b"\x00\xff").decode()
    assert target["answered_at"] is not None
