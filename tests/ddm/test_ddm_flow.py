"""Enable -> tokens -> declaration-items -> each declaration -> status, over HTTP, checked
field by field against Apple's protocol schema (declarative/protocol/*.yaml)."""

from __future__ import annotations

import json
from typing import Any

from mdmserver.catalog.validate import validate_value
from mdmserver.ddm.schema import declaration_spec, protocol_spec, status_spec
from mdmserver.ddm.status import flatten
from mdmserver.testing.http import send
from mdmserver.web.runtime import runtime
from tests.ddm.conftest import PASSCODE, ddm, enroll, sync_commands

ACTIVATION = "com.apple.activation.simple"


def _schema_problems(name: str, document: Any) -> list[str]:
    """Every finding for a protocol document. A status report's StatusItems are checked item
    by item against each status item's own schema (declarative/status/*.yaml)."""
    if name == "StatusReport":
        found = validate_value(protocol_spec(name), {**document, "StatusItems": {}})
        for item, value in flatten(document["StatusItems"]).items():
            spec = status_spec(item)
            assert spec is not None, item
            found += validate_value(spec, value, item)
        return [str(f) for f in found]
    return [str(f) for f in validate_value(protocol_spec(name), document)]


def test_a_device_syncs_every_declaration_and_reports_status(app, live_server, pki, admin):
    assert admin.put("passcode", PASSCODE, {"MinimumLength": 6}).status_code == 201
    assert admin.put("act", ACTIVATION, {"StandardConfigurations": ["passcode"]}).status_code == 201
    assert admin.call("POST", "/declarations/act/assignments", {"target": "all"}).status_code == 201

    device = pki.device()
    enroll(live_server, device)
    (enabled,) = sync_commands(live_server, device)  # enrollment turns DDM on
    assert set(enabled) == {"DeclarationsToken", "Timestamp"}

    tokens = ddm(live_server, device, "tokens")
    assert tokens.status_code == 200 and tokens.headers["Content-Type"] == "application/json"
    assert _schema_problems("TokensResponse", tokens.json()) == []
    assert tokens.json()["SyncTokens"]["DeclarationsToken"] == enabled["DeclarationsToken"]

    items = ddm(live_server, device, "declaration-items").json()
    assert _schema_problems("DeclarationItemsResponse", items) == []
    assert items["DeclarationsToken"] == enabled["DeclarationsToken"]
    manifest = items["Declarations"]
    listed = {
        (section, entry["Identifier"]): entry["ServerToken"]
        for section, entries in manifest.items()
        for entry in entries
    }
    assert ("Configurations", "passcode") in listed and ("Activations", "act") in listed
    assert ("Configurations", "com.mdmserver.ddm.status-subscriptions") in listed

    classes = {"Activations": "activation", "Configurations": "configuration",
               "Assets": "asset", "Management": "management"}  # fmt: skip
    for (section, identifier), token in listed.items():
        reply = ddm(live_server, device, f"declaration/{classes[section]}/{identifier}")
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert set(body) == {"Type", "Identifier", "ServerToken", "Payload"}
        assert (body["Identifier"], body["ServerToken"]) == (identifier, token)
        spec = declaration_spec(body["Type"])
        assert spec is not None and spec.cls == classes[section]
        assert [str(f) for f in validate_value(spec.root, body["Payload"], "Payload")] == []
    subscriptions = ddm(
        live_server, device, "declaration/configuration/com.mdmserver.ddm.status-subscriptions"
    ).json()["Payload"]["StatusItems"]
    assert {"Name": "passcode.is-compliant"} in subscriptions

    report = {
        "StatusItems": {
            "passcode": {"is-compliant": True, "is-present": True},
            "device": {"operating-system": {"version": "17.4", "build-version": "21E219"}},
            "management": {
                "declarations": {
                    "activations": [
                        {
                            "identifier": "act",
                            "server-token": listed[("Activations", "act")],
                            "active": True,
                            "valid": "valid",
                        },
                    ],
                    "configurations": [
                        {
                            "identifier": "passcode",
                            "server-token": "old",
                            "active": False,
                            "valid": "invalid",
                            "reasons": [{"code": "Error.X"}],
                        },
                    ],
                    "assets": [],
                    "management": [],
                }
            },
        },
        "Errors": [],
        "FullReport": True,
    }
    assert _schema_problems("StatusReport", report) == []
    reply = ddm(live_server, device, "status", report)
    assert reply.status_code == 200 and reply.content == b""

    items_api = admin.call("GET", f"/devices/{device.udid}/status-items").json()
    latest = {i["item"]: i["value"] for i in items_api["status_items"]}
    assert latest["passcode.is-compliant"] is True
    assert latest["device.operating-system.version"] == "17.4"
    states = admin.call("GET", f"/devices/{device.udid}/declarations").json()
    by_id = {d["identifier"]: d for d in states["channels"][0]["declarations"]}
    assert by_id["act"]["device"]["active"] is True and by_id["act"]["device"]["current"]
    assert by_id["passcode"]["device"]["valid"] == "invalid"
    assert by_id["passcode"]["device"]["reasons"] == [{"code": "Error.X"}]
    assert by_id["passcode"]["device"]["current"] is False


def test_bad_ddm_requests_get_a_4xx(app, live_server, pki):
    device = pki.device()
    enroll(live_server, device)
    for endpoint, data in (
        ("nope", None),
        ("declaration/widget/x", None),
        ("declaration/configuration/", None),
        ("declaration/configuration/not-assigned", None),
        ("status", None),
        ("status", b"{not json"),
        ("status", json.dumps({"StatusItems": []}).encode()),
        ("status", json.dumps(["a list"]).encode()),
        ("status", json.dumps({"StatusItems": {}, "FullReport": "yes"}).encode()),
        ("status", b'{"StatusItems": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        ("status", b"\xff\xfe not utf-8"),
    ):
        reply = ddm(live_server, device, endpoint, data)
        assert 400 <= reply.status_code < 500, (endpoint, reply.status_code, reply.text)
    stranger = pki.device()  # never enrolled
    assert ddm(live_server, stranger, "tokens").status_code == 403
    # Another device's certificate cannot speak for this one (same binding as every check-in).
    impostor = pki.device(udid=device.udid)
    assert ddm(live_server, impostor, "declaration-items").status_code == 403
    unsigned = device.checkin({"MessageType": "DeclarativeManagement", "UDID": device.udid,
                               "Endpoint": "tokens"})  # fmt: skip
    del unsigned.headers["Mdm-Signature"]
    assert send(live_server, unsigned).status_code == 400
    reports = runtime(app).ddm.store.report_count(device.udid)
    assert reports == 0  # nothing refused was stored


def test_ddm_is_turned_on_only_where_the_os_supports_it(app, live_server, pki):
    """DeclarativeManagement came in iOS 15 (Apple's schema); an iOS 14 device is not sent it."""
    old, new = pki.device(os_version="14.8"), pki.device(os_version="15.0")
    for device in (old, new):
        enroll(live_server, device)
    assert sync_commands(live_server, old) == []
    assert len(sync_commands(live_server, new)) == 1
    store = runtime(app).ddm.store
    assert (store.enabled(old.udid), store.enabled(new.udid)) == (False, True)
