"""The scheduled work (refresh_due_inventory, evaluate_stale) and its CLI, on a real database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from mdmserver.cli import main
from mdmserver.web.runtime import runtime
from tests.trust.conftest import enroll


def test_refresh_due_inventory_requeues_after_the_interval(app, live_server, pki, policy):
    device = pki.device()
    enroll(live_server, device)
    built = runtime(app).inventory
    assert built.inventory.refresh_due_inventory(datetime.now(UTC)) == 0
    later = datetime.now(UTC) + timedelta(hours=25)
    assert built.inventory.refresh_due_inventory(later) == 1
    pending = [q.request_type for q in runtime(app).storage.queue(device.udid)]
    assert pending[:2] == ["DeviceInformation", "SecurityInfo"]
    assert built.inventory.refresh_due_inventory(later) == 0  # asked: not due again


def test_history_records_old_and_new_values(app, live_server, pki, policy):
    device = pki.device()
    enroll(live_server, device)
    built = runtime(app).inventory
    built.inventory.refresh_due_inventory(datetime.now(UTC) + timedelta(hours=25))
    from tests.trust.conftest import CLEAN, drive

    newer = json.loads(json.dumps(CLEAN))
    newer["DeviceInformation"]["QueryResponses"]["OSVersion"] = "17.5"
    newer["InstalledApplicationList"]["InstalledApplicationList"].append(
        {"Identifier": "com.example.new", "Name": "New"}
    )
    drive(live_server, device, newer)
    history = built.inventory.store.history(device.udid)
    os_change = next(h for h in history if h["field"] == "os_version")
    assert (os_change["old"], os_change["new"]) == ("17.4", "17.5")
    apps = next(h for h in history if h["field"] == "installed_apps")
    assert apps["old"] == [] and apps["new"][0]["id"] == "com.example.new"
    raw = built.inventory.store.raw_answer(device.udid, "DeviceInformation")
    assert b"17.5" in raw


def test_cli(app, app_config, live_server, pki, policy, tmp_path):
    device = pki.device()
    enroll(live_server, device)
    runtime(app).seen.flush()  # last seen is written in batches (service/last_seen.py)
    env = {
        "MDM_HOME": str(app_config.home),
        "MDM_DATABASE_URL": app_config.database_url,
        "MDM_LOG_LEVEL": "WARNING",
    }
    runner = CliRunner()
    result = runner.invoke(main, ["inventory", "refresh-due"], env=env)
    assert result.exit_code == 0, result.output
    assert "inventory queued for 0 device(s)" in result.output
    result = runner.invoke(main, ["compliance", "evaluate-stale"], env=env)
    assert result.exit_code == 0 and "re-evaluated 0 device(s)" in result.output
    result = runner.invoke(main, ["compliance", "show", device.udid], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["state"] == "compliant"
    bad = tmp_path / "bad.toml"
    bad.write_text("passcode = true\n")
    result = runner.invoke(main, ["compliance", "policy", "--check", str(bad)], env=env)
    assert result.exit_code != 0 and "unknown policy key 'passcode'" in result.output
