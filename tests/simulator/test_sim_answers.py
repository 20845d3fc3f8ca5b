"""How a simulated device answers, without a server: payloads follow the platform and query."""

from __future__ import annotations

import plistlib
import random

from mdmserver.simulator.answers import Behaviour, answer, read_profile
from mdmserver.simulator.catalog import make_specs

IOS, MAC = (next(s for s in make_specs(20, seed=1) if s.platform == p) for p in ("iOS", "macOS"))


def _answer(spec, profiles, command, **behaviour):
    return answer(spec, profiles, command, Behaviour(**behaviour), random.Random(0))


def test_fleet_mix_is_reproducible_and_follows_the_share():
    specs = make_specs(100, macos_share=0.25, seed=7)
    assert specs == make_specs(100, macos_share=0.25, seed=7)
    assert sum(s.platform == "macOS" for s in specs) == 25
    assert len({s.udid for s in specs}) == len({s.serial_number for s in specs}) == 100
    assert all(s.product_name.startswith(("iPhone", "iPad")) for s in specs if s.platform == "iOS")


def test_device_information_answers_only_known_queried_keys():
    queries = ["SerialNumber", "BatteryLevel", "SystemIntegrityProtectionEnabled", "NoSuchKey"]
    ios = _answer(IOS, {}, {"RequestType": "DeviceInformation", "Queries": queries})
    mac = _answer(MAC, {}, {"RequestType": "DeviceInformation", "Queries": queries})
    assert ios.status == mac.status == "Acknowledged"
    assert set(ios.keys["QueryResponses"]) == {"SerialNumber", "BatteryLevel"}
    assert set(mac.keys["QueryResponses"]) == {"SerialNumber", "SystemIntegrityProtectionEnabled"}
    assert mac.keys["QueryResponses"]["SerialNumber"] == MAC.serial_number


def test_security_info_differs_by_platform():
    ios = _answer(IOS, {}, {"RequestType": "SecurityInfo"}).keys["SecurityInfo"]
    mac = _answer(MAC, {}, {"RequestType": "SecurityInfo"}).keys["SecurityInfo"]
    assert ios["HardwareEncryptionCaps"] == 3 and "FDE_Enabled" not in ios
    assert mac["FDE_Enabled"] is True and mac["FirewallSettings"]["FirewallEnabled"] is True


def test_profiles_are_tracked_across_install_list_and_remove():
    profiles: dict = {}
    body = plistlib.dumps(
        {
            "PayloadIdentifier": "com.example.wifi",
            "PayloadUUID": "U1",
            "PayloadType": "Configuration",
            "PayloadVersion": 1,
            "PayloadContent": [{"PayloadType": "com.apple.wifi.managed"}],
        }
    )
    assert _answer(IOS, profiles, {"RequestType": "InstallProfile", "Payload": body}).status == (
        "Acknowledged"
    )
    listed = _answer(IOS, profiles, {"RequestType": "ProfileList"}).keys["ProfileList"]
    assert [p["PayloadIdentifier"] for p in listed] == ["com.example.wifi"]
    removed = _answer(
        IOS, profiles, {"RequestType": "RemoveProfile", "Identifier": "com.example.wifi"}
    )
    assert removed.status == "Acknowledged" and profiles == {}
    again = _answer(
        IOS, profiles, {"RequestType": "RemoveProfile", "Identifier": "com.example.wifi"}
    )
    assert again.status == "Error" and again.keys["ErrorChain"][0]["ErrorCode"] == 12013
    junk = _answer(IOS, profiles, {"RequestType": "InstallProfile", "Payload": b"\x30\x03junk"})
    assert junk.status == "Error" and read_profile(b"not a profile") is None


def test_unknown_commands_get_the_error_devices_send():
    reply = _answer(IOS, {}, {"RequestType": "ShutDownDevice"})
    chain = reply.keys["ErrorChain"]
    assert reply.status == "Error"
    assert (chain[0]["ErrorDomain"], chain[0]["ErrorCode"]) == ("MCMDMErrorDomain", 12021)
    assert "ShutDownDevice" in chain[0]["LocalizedDescription"]


def test_notnow_and_error_rates_apply_but_never_to_erase():
    lock = {"RequestType": "DeviceLock"}
    assert _answer(IOS, {}, lock, notnow_rate=1.0).status == "NotNow"
    failed = _answer(IOS, {}, lock, error_rate=1.0)
    assert failed.status == "Error" and failed.keys["ErrorChain"][0]["ErrorCode"] == 12025
    erase = _answer(IOS, {}, {"RequestType": "EraseDevice"}, notnow_rate=1.0, error_rate=1.0)
    assert erase.status == "Acknowledged" and erase.wipe
