"""The admin CLI through click's CliRunner, against a real database (MDM_DATABASE_URL)."""

from __future__ import annotations

import base64
import json
import plistlib

import pytest
from click.testing import CliRunner

from mdmserver.cli import main
from mdmserver.web.runtime import runtime
from tests.api.conftest import last_audit, state


@pytest.fixture
def cli(app, app_config):
    env = {"MDM_HOME": str(app_config.home), "MDM_DATABASE_URL": app_config.database_url}

    def run(*args: str, input: str | None = None):
        return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)

    return run


def test_api_key_lifecycle(app, cli):
    created = cli("api-key", "create", "--name", "ci-bot")
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert key.startswith("mdm_")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/devices", headers=headers).status_code == 200
    listed = cli("api-key", "list", "--json")
    [entry] = json.loads(listed.output)
    assert entry["name"] == "ci-bot" and entry["scope"] == "admin" and key not in listed.output
    duplicate = cli("api-key", "create", "--name", "ci-bot")
    assert duplicate.exit_code != 0 and "ci-bot" in duplicate.output
    assert cli("api-key", "revoke", "ci-bot").exit_code == 0
    assert client.get("/api/v1/devices", headers=headers).status_code == 401
    missing = cli("api-key", "revoke", "ci-bot")
    assert missing.exit_code != 0 and "no active API key" in missing.output
    assert last_audit(app).actor.startswith("cli:")


def test_devices_list_and_show(app, api, cli):
    udid = api.enroll("macOS", os_version="14.4", serial="CLI-SERIAL")
    api.enroll("iOS")
    table = cli("devices", "list", "--platform", "macOS")
    assert table.exit_code == 0 and udid in table.output and "PLATFORM" in table.output
    data = json.loads(cli("devices", "list", "--json", "--min-os-version", "17").output)
    assert udid not in {d["id"] for d in data["devices"]} and len(data["devices"]) == 1
    shown = json.loads(cli("devices", "show", "CLI-SERIAL", "--json").output)
    assert shown["id"] == udid and shown["enrollments"][0]["status"] == "active"
    missing = cli("devices", "show", "NOPE")
    assert missing.exit_code != 0 and "NOPE" in missing.output


def test_lock_and_wipe(app, api, cli):
    mac = api.enroll("macOS", os_version="14.4")
    before = state(app)
    refused = cli("lock", mac)
    assert refused.exit_code != 0 and "PIN" in refused.output
    assert state(app) == before
    locked = cli("lock", mac, "--pin", "123456", "--message", "Hello", "--json")
    assert locked.exit_code == 0, locked.output
    sent = json.loads(locked.output)
    assert sent["targets"] == {mac: mac}

    aborted = cli("wipe", mac, "--pin", "123456", input="n\n")
    assert aborted.exit_code != 0 and "Aborted" in aborted.output
    assert len(runtime(app).storage.queue(mac)) == 1
    wiped = cli("wipe", mac, "--pin", "123456", input="y\n")
    assert wiped.exit_code == 0 and "queued EraseDevice" in wiped.output
    assert [i.request_type for i in runtime(app).storage.queue(mac)] == [
        "DeviceLock",
        "EraseDevice",
    ]


def test_command_send_parses_values_by_schema_type(app, api, cli, tmp_path):
    phone = api.enroll("iOS")
    profile = tmp_path / "p.mobileconfig"
    profile.write_bytes(plistlib.dumps({"PayloadType": "Configuration"}))
    sent = cli(
        "command",
        "send",
        "InstallProfile",
        "--target",
        phone,
        "--set",
        f"Payload=@{profile}",
        "--json",
    )
    assert sent.exit_code == 0, sent.output
    uuid = json.loads(sent.output)["command_uuid"]
    listed = cli(
        "command",
        "send",
        "InstalledApplicationList",
        "--target",
        phone,
        "--set",
        "ManagedAppsOnly=yes",
        "--set",
        "Identifiers=com.a,com.b",
    )
    assert listed.exit_code == 0, listed.output
    items = runtime(app).storage.queue(phone)
    assert [i.request_type for i in items] == ["InstallProfile", "InstalledApplicationList"]
    status = json.loads(cli("command", "status", uuid, "--json").output)
    assert status["targets"][0]["status"] == "queued"

    bad = cli(
        "command",
        "send",
        "InstalledApplicationList",
        "--target",
        phone,
        "--set",
        "ManagedAppsOnly=perhaps",
    )
    assert bad.exit_code != 0 and "ManagedAppsOnly" in bad.output
    unknown = cli("command", "send", "NoSuchThing", "--target", phone)
    assert unknown.exit_code != 0 and "NoSuchThing" in unknown.output
    neither = cli("command", "send", "ProfileList")
    assert neither.exit_code != 0 and "--target" in neither.output


def test_bulk_send_by_filter_and_progress(app, api, cli):
    phones = [api.enroll("iOS") for _ in range(60)]
    by_filter = cli("command", "send", "ProfileList", "--platform", "iOS", "--json")
    assert by_filter.exit_code == 0, by_filter.output
    assert set(json.loads(by_filter.output)["targets"]) == set(phones)
    many = ["command", "send", "SecurityInfo"] + [x for p in phones for x in ("--target", p)]
    result = cli(*many)
    assert result.exit_code == 0, result.output
    assert "queued SecurityInfo to 60 device(s)" in result.output


def test_queue_show_and_clear(app, api, cli):
    phone = api.enroll("iOS")
    cli("command", "send", "ProfileList", "--target", phone)
    shown = cli("queue", "show", phone)
    assert "ProfileList" in shown.output and "queued" in shown.output
    cleared = json.loads(cli("queue", "clear", phone, "--json").output)
    assert cleared == {"device_id": phone, "cancelled": 1}
    assert json.loads(cli("queue", "show", phone, "--json").output)["commands"] == []


def test_set_values_follow_the_schema():
    from mdmserver.catalog.schema import command_spec
    from mdmserver.commands.cli_values import BadAssignment, apply_assignments

    spec = command_spec("EraseDevice")
    assert apply_assignments(spec, ("PIN=012345", "PreserveDataPlan=true")) == {
        "PIN": "012345",
        "PreserveDataPlan": True,
    }
    nested = apply_assignments(
        spec, ("ReturnToService.Enabled=1", "ReturnToService.WiFiProfileData=AA==")
    )
    assert nested == {"ReturnToService": {"Enabled": True, "WiFiProfileData": "AA=="}}
    with pytest.raises(BadAssignment):
        apply_assignments(spec, ("PIN",))
    assert base64.b64decode(nested["ReturnToService"]["WiFiProfileData"]) == b"\x00"
