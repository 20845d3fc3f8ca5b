"""Issue #16 item 1: the inventory through the API, list filters on compliance and inventory
facts, and supervision reaching the command validator — over real HTTP, on both databases."""

from __future__ import annotations

import copy
from typing import Any

from mdmserver.web.runtime import runtime
from tests.trust.conftest import CLEAN, Client, enroll


def phone(pki: Any, serial: str) -> Any:
    """An emulated iPhone with a serial number of its own (serials are not unique otherwise)."""
    device = pki.device()
    device.serial_number = serial
    return device


def answers(*, supervised: bool, serial: str, passcode: bool = True) -> dict[str, Any]:
    found = copy.deepcopy(CLEAN)
    info = found["DeviceInformation"]["QueryResponses"]
    info["IsSupervised"] = supervised
    info["SerialNumber"] = serial
    info["DeviceName"] = f"Phone of {serial}"
    found["SecurityInfo"]["SecurityInfo"]["PasscodePresent"] = passcode
    found["SecurityInfo"]["SecurityInfo"]["PasscodeCompliant"] = passcode
    return found


def test_inventory_shows_every_part_with_when_it_was_reported(
    live_server: str, pki: Any, admin: Client, policy: Any
) -> None:
    device = phone(pki, "C02INV000001")
    enroll(live_server, device, answers(supervised=True, serial="C02INV000001"))

    reply = admin.get(f"/api/v1/devices/{device.udid}/inventory")
    assert reply.status_code == 200, reply.text
    inv = reply.json()
    assert inv["device_id"] == device.udid
    assert inv["hardware"]["serial_number"] == "C02INV000001"
    assert inv["hardware"]["product_name"] == "iPhone15,2"
    assert inv["os"]["os_version"] == "17.4"
    assert inv["battery"]["battery_level"] == 0.8
    assert inv["supervision"]["supervised"] is True
    assert inv["passcode"] == {
        "passcode_present": True,
        "passcode_compliant": True,
        "reported_at": inv["passcode"]["reported_at"],
    }
    assert inv["encryption"]["hardware_encryption_caps"] == 3
    assert [a["id"] for a in inv["apps"]["installed_apps"]] == ["com.apple.Pages"]
    assert inv["profiles"]["profiles"][0]["identifier"] == "com.example.wifi"
    for part in ("hardware", "passcode", "apps", "profiles", "certificates"):
        assert inv[part]["reported_at"], part
    # By serial too, as every device route.
    by_serial = admin.get("/api/v1/devices/C02INV000001/inventory")
    assert by_serial.status_code == 200
    assert by_serial.json()["device_id"] == device.udid


def test_inventory_of_a_device_that_never_answered_is_empty_not_an_error(
    app: Any, live_server: str, pki: Any, admin: Client
) -> None:
    device = pki.device()
    enroll(live_server, device, answers={})  # acknowledges with no data at all
    reply = admin.get(f"/api/v1/devices/{device.udid}/inventory")
    assert reply.status_code == 200
    assert reply.json()["passcode"]["passcode_present"] is None
    missing = admin.get("/api/v1/devices/NO-SUCH-DEVICE/inventory")
    assert missing.status_code == 404
    assert "NO-SUCH-DEVICE" in missing.json()["error"]


def test_device_list_filters_on_compliance_supervision_and_search(
    live_server: str, pki: Any, admin: Client, policy: Any
) -> None:
    good, bad = phone(pki, "C02GOOD00011"), phone(pki, "C02BAD000022")
    fresh = phone(pki, "C02FRESH0033")
    enroll(live_server, good, answers(supervised=True, serial="C02GOOD00011"))
    enroll(live_server, bad, answers(supervised=False, serial="C02BAD000022", passcode=False))
    enroll(live_server, fresh, answers={})

    def ids(query: str) -> set[str]:
        reply = admin.get(f"/api/v1/devices?{query}")
        assert reply.status_code == 200, reply.text
        return {d["id"] for d in reply.json()["devices"]}

    assert ids("compliance=compliant") == {good.udid}
    assert bad.udid in ids("compliance=noncompliant")
    assert good.udid not in ids("compliance=noncompliant")
    assert ids("supervised=false") == {bad.udid}
    assert ids("supervised=true") == {good.udid}
    assert ids("passcode_compliant=false") == {bad.udid}
    assert ids("passcode_compliant=true") == {good.udid}
    assert ids("search=bad0000") == {bad.udid}
    assert ids("search=iphone%200011") == {good.udid}  # DeviceName "iPhone 0011"
    assert ids(f"search={fresh.udid[:8].lower()}") == {fresh.udid}
    refused = admin.get("/api/v1/devices?compliance=maybe")
    assert refused.status_code == 400
    assert "compliance" in refused.json()["error"]


def test_a_supervision_only_command_is_refused_for_an_unsupervised_device(
    app: Any, live_server: str, pki: Any, admin: Client
) -> None:
    unsupervised, supervised = phone(pki, "C02UNSUP0001"), phone(pki, "C02SUP000001")
    enroll(live_server, unsupervised, answers(supervised=False, serial="C02UNSUP0001"))
    enroll(live_server, supervised, answers(supervised=True, serial="C02SUP000001"))
    storage = runtime(app).storage
    before = storage.queue(unsupervised.udid)

    lost = {"RequestType": "EnableLostMode", "Message": "Call IT"}
    reply = requests_post(admin, {"targets": [unsupervised.udid], "command": lost})
    assert reply.status_code == 422, reply.text
    assert "supervised" in reply.json()["error"]
    assert storage.queue(unsupervised.udid) == before

    accepted = requests_post(admin, {"targets": [supervised.udid], "command": lost})
    assert accepted.status_code in (200, 201, 202), accepted.text
    assert not any("supervis" in w["message"] for w in accepted.json().get("warnings", []))


def requests_post(client: Client, body: Any) -> Any:
    import requests

    return requests.post(
        client.base_url + "/api/v1/commands",
        json=body,
        headers={"Authorization": f"Bearer {client.key}"},
        timeout=10,
    )
