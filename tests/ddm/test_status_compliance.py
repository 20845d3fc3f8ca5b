"""The status channel feeds compliance inside the device's request: the trust answer a
relying service gets right after a status report already reflects it."""

from __future__ import annotations

from typing import Any

import requests

from mdmserver.storage.sql.ddm_store import REPORTS_KEPT
from mdmserver.web.runtime import runtime
from tests.ddm.conftest import ddm
from tests.trust.conftest import CLEAN, enroll

POLICY = {"passcode_present": True, "passcode_compliant": True, "jailbreak_apps": False}


def _trust(base: str, key: str, udid: str) -> dict[str, Any]:
    reply = requests.get(
        f"{base}/api/v1/trust/devices/{udid}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def _report(compliant: bool, full: bool = False) -> dict[str, Any]:
    return {
        "StatusItems": {"passcode": {"is-compliant": compliant, "is-present": True}},
        "Errors": [],
        "FullReport": full,
    }


def test_passcode_compliance_from_status_changes_the_trust_answer(app, live_server, pki, admin):
    keys = runtime(app).admin.api_keys
    trust_key = keys.create("relying", "trust", actor="test").key
    assert admin.call("PUT", "/compliance/policy", POLICY).status_code == 200
    device = pki.device()
    enroll(live_server, device, CLEAN)  # inventory answers: passcode compliant
    assert _trust(live_server, trust_key, device.udid)["compliant"] is True

    assert ddm(live_server, device, "status", _report(False)).status_code == 200
    answer = _trust(live_server, trust_key, device.udid)
    assert answer["compliant"] is False
    assert any("passcode does not meet" in r for r in answer["reasons"])

    assert ddm(live_server, device, "status", _report(True)).status_code == 200
    assert _trust(live_server, trust_key, device.udid)["compliant"] is True


def test_reports_keep_the_latest_items_and_a_bounded_history(app, live_server, pki, admin):
    device = pki.device()
    enroll(live_server, device, CLEAN)
    apps = {"app": {"managed": {"list": [{"identifier": "a", "state": "managed"}]}}}
    full = {"StatusItems": {**apps, "passcode": {"is-present": True}}, "FullReport": True}
    assert ddm(live_server, device, "status", full).status_code == 200
    more = {"app": {"managed": {"list": [{"identifier": "b", "state": "installing"}]}}}
    assert ddm(live_server, device, "status", {"StatusItems": more}).status_code == 200
    gone = {"app": {"managed": {"list": [{"identifier": "a", "_removed": True}]}}}
    assert ddm(live_server, device, "status", {"StatusItems": gone}).status_code == 200

    body = admin.call("GET", f"/devices/{device.udid}/status-items").json()
    latest = {i["item"]: i["value"] for i in body["status_items"]}
    assert latest["app.managed.list"] == [{"identifier": "b", "state": "installing"}]
    assert latest["passcode.is-present"] is True

    # A full report replaces everything: items it no longer has are gone.
    assert ddm(live_server, device, "status", {**full, "StatusItems": apps}).status_code == 200
    body = admin.call("GET", f"/devices/{device.udid}/status-items").json()
    assert {i["item"] for i in body["status_items"]} == {"app.managed.list"}
    history = body["channels"][0]["history"]
    assert {"item": "passcode.is-present", "value": None} in [
        {"item": h["item"], "value": h["value"]} for h in history
    ]
    ddm_store = runtime(app).ddm.store
    for _ in range(REPORTS_KEPT + 3):
        ddm(live_server, device, "status", {"StatusItems": more})
    assert ddm_store.report_count(device.udid) == REPORTS_KEPT


def test_a_failing_inventory_feed_does_not_fail_the_device(app, live_server, pki):
    """The report is stored before inventory hears of it; inventory's trouble stays its own."""
    device = pki.device()
    enroll(live_server, device, CLEAN)
    service = runtime(app).ddm.service

    def broken(*_: Any) -> None:
        raise RuntimeError("inventory is down")

    service.on_status = broken
    assert ddm(live_server, device, "status", _report(False)).status_code == 200
    items = runtime(app).ddm.store.status_items(device.udid)
    assert items["passcode.is-compliant"][0] is False
