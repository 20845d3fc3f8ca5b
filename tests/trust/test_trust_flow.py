"""The done-when of issue #7, end to end over real HTTP: an emulated device's answers move its
compliance, and the trust answer flips in the same request cycle."""

from __future__ import annotations

import plistlib
from datetime import UTC, datetime, timedelta

from mdmserver.protocol.commands import new_command
from mdmserver.testing.http import send
from mdmserver.web.runtime import runtime
from tests.trust.conftest import CLEAN, drive, enroll


def answer_security_info(app, live_server, device, info):
    """Queue SecurityInfo, let the device fetch it and answer; returns the POST's reply."""
    command = new_command("SecurityInfo")
    runtime(app).storage.enqueue(command, [device.udid])
    fetched = plistlib.loads(send(live_server, device.idle()).content)
    assert fetched["CommandUUID"] == command.command_uuid
    reply = send(
        live_server, device.result("Acknowledged", command.command_uuid, SecurityInfo=info)
    )
    assert reply.status_code == 200
    return reply


def test_enrollment_queues_the_full_inventory(app, live_server, pki, trust, policy):
    device = pki.device()
    answered = enroll(live_server, device)
    assert answered[:6] == [
        "DeviceInformation",
        "SecurityInfo",
        "ProfileList",
        "InstalledApplicationList",
        "CertificateList",
        "ManagedApplicationList",
    ]
    first = runtime(app).storage.queue(device.udid, include_done=True)[0]
    assert first.request_type == "DeviceInformation"
    # DeviceInformation asked for every documented iOS query.
    with runtime(app).engine.connect() as conn:
        plist = conn.exec_driver_sql(
            "SELECT plist FROM commands WHERE request_type = 'DeviceInformation'"
        ).scalar()
    queries = plistlib.loads(plist)["Command"]["Queries"]
    assert {"OSVersion", "IsSupervised", "IsActivationLockEnabled", "BatteryLevel"} <= set(queries)
    facts = runtime(app).inventory.inventory.store.facts(device.udid)
    assert facts["platform"] == "iOS"
    assert facts["supervised"] is True and facts["data_protection"] is True
    assert facts["profiles"][0]["identifier"] == "com.example.wifi"
    body = trust.get(f"/api/v1/trust/devices/{device.udid}").json()
    assert body["managed"] is True and body["compliant"] is True, body
    assert body["reasons"] == [] and body["evaluated_at"]
    # The serial number finds the same device.
    assert trust.get("/api/v1/trust/devices/C02TEST00001").json()["compliant"] is True


def test_no_passcode_flips_trust_in_the_same_cycle_and_back(app, live_server, pki, trust, policy):
    device = pki.device()
    enroll(live_server, device)
    url = f"/api/v1/trust/devices/{device.udid}"
    assert trust.get(url).json()["compliant"] is True

    answer_security_info(
        app, live_server, device, {"PasscodePresent": False, "HardwareEncryptionCaps": 3}
    )
    body = trust.get(url).json()  # right after the Acknowledged POST, no scheduler involved
    assert body["managed"] is True and body["compliant"] is False
    assert "no passcode is set" in body["reasons"]
    assert any("data protection is off" in reason for reason in body["reasons"])

    answer_security_info(
        app,
        live_server,
        device,
        {"PasscodePresent": True, "PasscodeCompliant": True, "HardwareEncryptionCaps": 3},
    )
    assert trust.get(url).json() == {**trust.get(url).json(), "compliant": True, "reasons": []}
    history = runtime(app).inventory.compliance_store.history(device.udid)
    assert [h["state"] for h in history][:3] == ["compliant", "noncompliant", "compliant"]


def test_a_jailbreak_app_makes_the_device_noncompliant(app, live_server, pki, trust, policy):
    device = pki.device()
    enroll(live_server, device)
    command = new_command("InstalledApplicationList")
    runtime(app).storage.enqueue(command, [device.udid])
    apps = [
        {"Identifier": "com.apple.Pages", "Name": "Pages"},
        {"Identifier": "org.coolstar.SileoStore", "Name": "Sileo"},
    ]
    drive(live_server, device, {"InstalledApplicationList": {"InstalledApplicationList": apps}})
    body = trust.get(f"/api/v1/trust/devices/{device.udid}").json()
    assert body["compliant"] is False
    assert any("org.coolstar.SileoStore" in reason for reason in body["reasons"])


def test_a_silent_device_falls_out_of_compliance(app, live_server, pki, trust, policy):
    device = pki.device()
    enroll(live_server, device)
    runtime(app).seen.flush()  # last seen is written in batches (service/last_seen.py)
    built = runtime(app).inventory
    later = datetime.now(UTC) + timedelta(hours=25)
    assert built.compliance.evaluate_stale(later) == 1
    state = built.compliance_store.state(device.udid)
    assert state.state == "noncompliant"
    assert any("last check-in" in reason for reason in state.reasons)
    assert trust.get(f"/api/v1/trust/devices/{device.udid}").json()["compliant"] is False
    # Judged once: a second run right after finds nothing new to do.
    assert built.compliance.evaluate_stale(later) == 0
    # Remediation asked the silent device for a fresh inventory.
    pending = [q.request_type for q in runtime(app).storage.queue(device.udid)]
    assert "SecurityInfo" in pending
    # When it comes back and answers, it is compliant again.
    drive(live_server, device, CLEAN)
    assert trust.get(f"/api/v1/trust/devices/{device.udid}").json()["compliant"] is True


def test_missing_required_profile_is_recorded_for_remediation(app, live_server, pki, trust, policy):
    device = pki.device()
    enroll(live_server, device, {**CLEAN, "ProfileList": {"ProfileList": []}})
    body = trust.get(f"/api/v1/trust/devices/{device.udid}").json()
    assert body["compliant"] is False
    assert "required profiles missing: com.example.wifi" in body["reasons"]
    open_items = runtime(app).inventory.compliance_store.remediations(device.udid)
    assert [(r["kind"], r["detail"], r["status"]) for r in open_items] == [
        ("install_profile", "com.example.wifi", "requested")
    ]


def test_unknown_and_unenrolled_devices_say_nothing_else(app, live_server, pki, trust, policy):
    assert trust.get("/api/v1/trust/devices/NO-SUCH-DEVICE").json() == {
        "managed": False,
        "compliant": False,
    }
    device = pki.device()
    enroll(live_server, device)
    assert send(live_server, device.check_out()).status_code == 200
    assert trust.get(f"/api/v1/trust/devices/{device.udid}").json() == {
        "managed": False,
        "compliant": False,
    }
