"""Declarations as admin objects: validation with key paths, ServerTokens from content, and
exactly one sync command (with the new DeclarationsToken) per change that alters a set."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime
from typing import Any

import requests

from mdmserver.storage.sql.schema import device_tags
from mdmserver.testing.http import send
from mdmserver.web.runtime import runtime
from tests.ddm.conftest import PASSCODE, ddm, enroll, sync_commands

ACTIVATION = "com.apple.activation.simple"


def _paths(reply: Any) -> list[str]:
    assert reply.status_code == 422, reply.text
    return [p["path"] for p in reply.json()["problems"]]


INVALID = [
    ({"Type": "com.apple.configuration.passcode.setings", "Payload": {}}, "Type"),
    ({"Type": PASSCODE, "Payload": {"MinimumLength": "six"}}, "Payload.MinimumLength"),
    ({"Type": PASSCODE, "Payload": {"MaximumFailedAttempts": 1}}, "Payload.MaximumFailedAttempts"),
    ({"Type": ACTIVATION, "Payload": {}}, "Payload.StandardConfigurations"),
    (
        {"Type": ACTIVATION, "Payload": {"StandardConfigurations": ["missing"]}},
        "Payload.StandardConfigurations[0]",
    ),
    ({"Type": PASSCODE, "Payload": {}, "Colour": "red"}, "Colour"),
]


def test_invalid_declarations_are_refused_with_the_key_path(admin):
    for body, path in INVALID:
        reply = admin.call("PUT", "/declarations/bad", body)
        assert path in _paths(reply), (body, reply.text)
        assert admin.call("GET", "/declarations/bad").status_code == 404  # nothing stored
    reply = admin.put("bad", "com.apple.configuration.passcode.setings", {})
    assert "did you mean 'com.apple.configuration.passcode.settings'" in reply.text
    # The server's own declarations are not the admin's to change.
    reply = admin.put("com.mdmserver.ddm.status-subscriptions", PASSCODE, {})
    assert _paths(reply) == ["Identifier"]
    delete = admin.call("DELETE", "/declarations/com.mdmserver.ddm.status-subscriptions")
    assert delete.status_code == 409


def test_what_no_targeted_device_supports_is_refused(app, live_server, pki, admin):
    """ChangeAtNextAuth is macOS-only; RequireAlphanumericPasscode came in iOS 16.2."""
    enroll(live_server, pki.device(os_version="16.0"))
    assert admin.put("mac-only", PASSCODE, {"ChangeAtNextAuth": True}).status_code == 201
    refused = admin.call("POST", "/declarations/mac-only/assignments", {"target": "all"})
    assert _paths(refused) == ["Payload.ChangeAtNextAuth"]
    assert "not supported on iOS" in refused.text
    assert admin.put("newer", PASSCODE, {"RequireAlphanumericPasscode": True}).status_code == 201
    refused = admin.call("POST", "/declarations/newer/assignments", {"target": "all"})
    assert _paths(refused) == ["Payload.RequireAlphanumericPasscode"]
    assert "needs iOS 16.2" in refused.text
    assert admin.call("GET", "/declarations/newer").json()["assignments"] == []
    # Through an activation: what it brings along is checked too.
    activation = {"StandardConfigurations": ["mac-only"]}
    assert admin.put("act", "com.apple.activation.simple", activation).status_code == 201
    refused = admin.call("POST", "/declarations/act/assignments", {"target": "all"})
    assert _paths(refused) == ["Payload.ChangeAtNextAuth"]


def test_a_configuration_an_activation_needs_cannot_be_deleted(admin):
    assert admin.put("p", PASSCODE, {"MinimumLength": 4}).status_code == 201
    assert admin.put("a", ACTIVATION, {"StandardConfigurations": ["p"]}).status_code == 201
    refused = admin.call("DELETE", "/declarations/p")
    assert refused.status_code == 409 and "referenced by a" in refused.text
    assert admin.call("DELETE", "/declarations/a").status_code == 200
    assert admin.call("DELETE", "/declarations/p").status_code == 200


def test_server_token_follows_the_content(admin):
    first = admin.put("p", PASSCODE, {"MinimumLength": 4}).json()
    again = admin.put("p", PASSCODE, {"MinimumLength": 4})
    assert again.status_code == 200 and again.json()["changed"] is False
    assert again.json()["ServerToken"] == first["ServerToken"]
    edited = admin.put("p", PASSCODE, {"MinimumLength": 5}).json()
    assert edited["changed"] is True and edited["ServerToken"] != first["ServerToken"]


def test_each_change_is_one_sync_with_the_new_token(app, live_server, pki, admin):
    device = pki.device()
    enroll(live_server, device)
    (enabled,) = sync_commands(live_server, device)
    assert admin.put("p", PASSCODE, {"MinimumLength": 4}).status_code == 201
    assert admin.put("a", ACTIVATION, {"StandardConfigurations": ["p"]}).status_code == 201
    assert sync_commands(live_server, device) == []  # not assigned: nobody's set changed

    assert (
        admin.call("POST", "/declarations/a/assignments", {"target": "all"}).json()["synced"] == 1
    )
    (assigned,) = sync_commands(live_server, device)
    token = ddm(live_server, device, "tokens").json()["SyncTokens"]["DeclarationsToken"]
    assert assigned["DeclarationsToken"] == token != enabled["DeclarationsToken"]

    assert admin.put("p", PASSCODE, {"MinimumLength": 4}).json()["synced"] == 0  # unchanged
    assert sync_commands(live_server, device) == []

    assert admin.put("p", PASSCODE, {"MinimumLength": 6}).json()["synced"] == 1
    (edited,) = sync_commands(live_server, device)
    assert edited["DeclarationsToken"] not in (token, enabled["DeclarationsToken"])

    # A burst of changes before the device comes back is one command.
    for length in (7, 8, 9):
        admin.put("p", PASSCODE, {"MinimumLength": length})
    assert len(sync_commands(live_server, device)) == 1
    items = ddm(live_server, device, "declaration-items").json()
    passcode = ddm(live_server, device, "declaration/configuration/p").json()
    assert passcode["Payload"] == {"MinimumLength": 9}
    assert {"Identifier": "p", "ServerToken": passcode["ServerToken"]} in items["Declarations"][
        "Configurations"
    ]

    assert admin.call("DELETE", "/declarations/a/assignments/all").json()["synced"] == 1
    assert len(sync_commands(live_server, device)) == 1
    items = ddm(live_server, device, "declaration-items").json()
    assert [i["Identifier"] for i in items["Declarations"]["Activations"]] == [
        "com.mdmserver.ddm.activation.status"
    ]


def test_the_macos_user_channel_has_its_own_set_and_status(app, live_server, pki, admin):
    mac = pki.device(
        product_name="Mac14,2", model="Mac14,2", model_name="MacBook Air", os_version="14.4"
    )
    enroll(live_server, mac)
    user = {"UserID": "A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883"}
    assert send(live_server, mac.token_update(**user, UserShortName="joe")).status_code == 200
    # System-scope only (softwareupdate enforcement) vs a type with a user scope (passcode).
    assert admin.put("p", PASSCODE, {"MinimumLength": 4}).status_code == 201
    update = {"TargetOSVersion": "14.5", "TargetLocalDateTime": "2030-01-01T10:00:00"}
    assert (
        admin.put(
            "u", "com.apple.configuration.softwareupdate.enforcement.specific", update
        ).status_code
        == 201
    )
    assert admin.put("a", ACTIVATION, {"StandardConfigurations": ["p", "u"]}).status_code == 201
    assert admin.call("POST", "/declarations/a/assignments", {"target": "all"}).status_code == 201

    def configurations(**extra: Any) -> set[str]:
        body = ddm(live_server, mac, "declaration-items", **extra).json()
        return {i["Identifier"] for i in body["Declarations"]["Configurations"]}

    assert {"p", "u"} <= configurations()
    assert "p" in configurations(**user) and "u" not in configurations(**user)
    report = {"StatusItems": {"passcode": {"is-present": False}}, "Errors": []}
    assert ddm(live_server, mac, "status", report, **user).status_code == 200
    channels = admin.call("GET", f"/devices/{mac.udid}/status-items").json()["channels"]
    by_channel = {c["enrollment_id"]: {i["item"] for i in c["status_items"]} for c in channels}
    assert by_channel[f"{mac.udid}:{user['UserID']}"] == {"passcode.is-present"}
    assert by_channel[mac.udid] == set()
    assert runtime(app).storage.enrollment(f"{mac.udid}:{user['UserID']}") is not None


def test_hosted_assets_go_to_their_devices_only(app, live_server, pki, admin):
    runtime(app).config = dataclasses.replace(runtime(app).config, server_url=live_server)
    mine, other = pki.device(), pki.device()
    for device in (mine, other):
        enroll(live_server, device)
    data = b"\x00config-bytes\xff" * 10
    reply = requests.put(
        f"{live_server}/api/v1/declarations/blob/data",
        data=data,
        headers={**admin.headers, "Content-Type": "application/x-thing"},
        timeout=10,
    )
    assert reply.status_code == 201, reply.text
    reference = reply.json()["Payload"]["Reference"]
    assert reference["Hash-SHA-256"] == hashlib.sha256(data).hexdigest()
    assert reference["Size"] == len(data)
    assert reply.json()["Payload"]["Authentication"] == {"Type": "MDM"}
    # Not assigned to anyone yet: even its device is refused.
    url = reference["DataURL"]
    path = url.removeprefix(live_server)

    def fetch(device: Any, signed: bool = True) -> requests.Response:
        headers = {"Mdm-Signature": device.sign(b"")} if signed else {}
        return requests.get(url, headers=headers, timeout=10)

    assert fetch(mine).status_code == 403
    tag = "tag:lab"
    with runtime(app).engine.begin() as conn:
        conn.execute(
            device_tags.insert().values(
                device_id=mine.udid, tag="lab", created_at=datetime.now(UTC)
            )
        )
    assert admin.call("POST", "/declarations/blob/assignments", {"target": tag}).status_code == 201
    got = fetch(mine)
    assert got.status_code == 200 and got.content == data
    assert got.headers["Content-Type"] == "application/x-thing"
    assert fetch(other).status_code == 403  # another device, signed and enrolled
    assert fetch(mine, signed=False).status_code == 400  # unsigned
    assert fetch(pki.device()).status_code == 403  # a trusted certificate bound to nobody
    forged = {"Mdm-Signature": mine.sign(b"something else")}
    assert requests.get(url, headers=forged, timeout=10).status_code == 403
    assert (
        requests.get(
            live_server + path + "x", headers={"Mdm-Signature": mine.sign(b"")}, timeout=10
        ).status_code
        == 403
    )
    manifest = ddm(live_server, mine, "declaration-items").json()["Declarations"]["Assets"]
    assert [a["Identifier"] for a in manifest] == ["blob"]
