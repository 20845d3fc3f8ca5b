"""Simulated devices against the real server over HTTP: enrollment, pushes, answers, wipes."""

from __future__ import annotations

import plistlib
import time

PENDING = {"queued", "sent", "notnow"}  # statuses a command can still leave


def _wait_answered(server, uuid: str, expected: int, timeout: float = 20.0) -> dict:
    """Poll the admin API until ``expected`` targets of the command have a final status."""
    deadline = time.monotonic() + timeout
    while True:
        status = server.admin.command_status(uuid)
        final = sum(n for s, n in status["counts"].items() if s not in PENDING)
        if final >= expected or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def _send_and_push(server, fleet, command: dict, devices=None) -> str:
    devices = devices or fleet.devices
    sent = server.admin.send_command(command, targets=[d.udid for d in devices])
    for device in devices:
        server.admin.push(device.udid)
    return sent["command_uuid"]


def test_fleet_enrolls_and_answers_what_was_asked(sim_server):
    fleet = sim_server.fleet(devices=4, macos_share=0.5, threads=4)
    try:
        assert all(d.enrolled and d.topic for d in fleet.devices)
        queries = ["SerialNumber", "OSVersion", "BatteryLevel", "SystemIntegrityProtectionEnabled"]
        uuid = _send_and_push(
            sim_server, fleet, {"RequestType": "DeviceInformation", "Queries": queries}
        )
        status = _wait_answered(sim_server, uuid, 4)
        assert status["counts"] == {"acknowledged": 4}, status["counts"]
        by_device = {t["device_id"]: t["result"] for t in status["targets"]}
        for device in fleet.devices:
            answers = by_device[device.udid]["QueryResponses"]
            assert answers["SerialNumber"] == device.spec.serial_number
            assert ("BatteryLevel" in answers) == (device.spec.platform == "iOS")
            assert ("SystemIntegrityProtectionEnabled" in answers) == (
                device.spec.platform == "macOS"
            )
        assert fleet.stats.events["push_received"] >= 4
        assert fleet.stats.total_errors() == 0, fleet.stats.errors
    finally:
        fleet.close()


def test_profiles_round_trip_and_unsupported_commands_error(sim_server):
    fleet = sim_server.fleet(devices=2, macos_share=0.0, threads=2)
    try:
        profile = plistlib.dumps(
            {
                "PayloadIdentifier": "com.example.sim",
                "PayloadUUID": "5A5A",
                "PayloadType": "Configuration",
                "PayloadVersion": 1,
                "PayloadDisplayName": "Sim",
                "PayloadContent": [],
            }
        )
        install = sim_server.admin.send_command(
            {"RequestType": "InstallProfile", "Payload": _b64(profile)},
            targets=[d.udid for d in fleet.devices],
        )
        listing = _send_and_push(sim_server, fleet, {"RequestType": "ProfileList"})
        restart = _send_and_push(sim_server, fleet, {"RequestType": "RestartDevice"})
        for uuid in (install["command_uuid"], listing, restart):
            _wait_answered(sim_server, uuid, 2)
        assert _wait_answered(sim_server, install["command_uuid"], 2)["counts"] == {
            "acknowledged": 2
        }
        listed = _wait_answered(sim_server, listing, 2)["targets"][0]["result"]["ProfileList"]
        assert "com.example.sim" in [p["PayloadIdentifier"] for p in listed]
        refused = _wait_answered(sim_server, restart, 2)
        assert refused["counts"] == {"error": 2}
        assert refused["targets"][0]["result"]["ErrorChain"][0]["ErrorCode"] == 12021
    finally:
        fleet.close()


def test_notnow_commands_are_retried_until_acknowledged(sim_server):
    fleet = sim_server.fleet(devices=3, threads=3, notnow_rate=0.6, notnow_retry_seconds=0.2)
    try:
        uuids = [
            _send_and_push(sim_server, fleet, {"RequestType": "SecurityInfo"}) for _ in range(3)
        ]
        for uuid in uuids:
            status = _wait_answered(sim_server, uuid, 3, timeout=30)
            assert set(status["counts"]) <= {"acknowledged"}, status["counts"]
        assert any(k.endswith(":NotNow") for k in fleet.stats.answers), fleet.stats.answers
    finally:
        fleet.close()


def test_erased_device_forgets_its_identity(sim_server):
    fleet = sim_server.fleet(devices=2, macos_share=0.0, threads=2)
    try:
        target, other = fleet.devices
        uuid = _send_and_push(sim_server, fleet, {"RequestType": "EraseDevice"}, [target])
        assert _wait_answered(sim_server, uuid, 1)["counts"] == {"acknowledged": 1}
        fleet.wait_quiet(10)
        assert target.wiped and not target.enrolled and target.identity is None
        assert target.unsigned_idle(fleet.transport) in (400, 403)
        assert other.enrolled and not other.wiped
        assert fleet.stats.events["wiped"] == 1
    finally:
        fleet.close()


def test_error_rate_answers_with_error_chains(sim_server):
    fleet = sim_server.fleet(devices=2, threads=2, macos_share=0.0, error_rate=1.0)
    try:
        uuid = _send_and_push(sim_server, fleet, {"RequestType": "DeviceLock"})
        status = _wait_answered(sim_server, uuid, 2)
        assert status["counts"] == {"error": 2}
        chain = status["targets"][0]["result"]["ErrorChain"]
        assert chain[0]["ErrorDomain"] == "MCMDMErrorDomain"
    finally:
        fleet.close()


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()
