"""Simulated devices speak DDM against the real server: enabled at enrollment, they sync,
report status (a passcode fixed later), and carry out an enforced OS update step by step."""

from __future__ import annotations

import time
from typing import Any

from mdmserver.catalog.schema import parse_version
from mdmserver.storage.sql.ddm_store import DDMStore
from mdmserver.storage.sql.engine import make_engine


def _until(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def _session(fleet: Any) -> None:
    """Time passes: every device polls once more."""
    fleet.wake_all()
    assert fleet.wait_quiet(30)


def passcode_reports(database_url: str, udid: str) -> list[Any]:
    """Every passcode.is-compliant value the device reported, oldest first."""
    engine = make_engine(database_url)
    try:
        history = DDMStore(engine).status_history(udid, 500)
    finally:
        engine.dispose()
    return [h["value"] for h in reversed(history) if h["item"] == "passcode.is-compliant"]


def test_simulated_devices_sync_report_and_update(sim_server, database_url):
    fleet = sim_server.fleet(devices=2, macos_share=0.0, threads=2)
    admin = sim_server.admin
    try:
        _session(fleet)  # the enrollment session: inventory, and DDM turned on
        assert fleet.stats.events["ddm_synced"] == 2, fleet.stats.events
        for device in fleet.devices:
            items = admin.status_items(device.udid)
            # First reported as not compliant (the user fixes it one session later; a push for
            # a command the server queued itself may already have made that session happen).
            assert passcode_reports(database_url, device.udid)[0] is False
            assert items["device.operating-system.version"] == device.spec.os_version
            states = items["management.declarations"]["configurations"]
            assert {s["identifier"] for s in states} == {"com.mdmserver.ddm.status-subscriptions"}
        _session(fleet)
        for device in fleet.devices:
            assert admin.status_items(device.udid)["passcode.is-compliant"] is True

        newest = max((d.spec.os_version for d in fleet.devices), key=parse_version)
        target = f"{parse_version(newest)[0] + 1}.0"
        enforced = admin.enforce_os_update(target, "2026-01-01T09:00")
        assert enforced["synced"] == 2
        assert _until(lambda: fleet.stats.events["ddm_synced"] >= 4), fleet.stats.events
        assert fleet.wait_quiet(30)
        # Apple's schema: enforcement.specific needs iOS 17; older devices do not get it.
        able = {d.udid for d in fleet.devices if parse_version(d.spec.os_version) >= (17, 0, 0)}
        assert able, "the seed must give at least one device iOS 17 or later"

        def states() -> dict[str, str]:
            return {d["device_id"]: d["state"] for d in admin.os_update_progress()["devices"]}

        seen = []
        for _ in range(3):
            seen.append(states())
            _session(fleet)
        seen.append(states())
        for udid in able:
            assert [s[udid] for s in seen] == ["downloading", "installing", "updated", "updated"]
        for device in fleet.devices:
            if device.udid not in able:
                assert {s[device.udid] for s in seen} == {"not_supported"}
        assert {
            d["os_version"] for d in admin.os_update_progress()["devices"] if d["device_id"] in able
        } == {target}
        assert fleet.stats.events["ddm_os_updated"] == len(able)
        assert fleet.stats.total_errors() == 0, fleet.stats.errors
    finally:
        fleet.close()
