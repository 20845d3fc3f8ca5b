"""What an assignment's install command carries, InstalledApplicationList answers, and the DDM
path, over real HTTP on SQLite and PostgreSQL:

- a managed app configuration and management flags reach the install command, checked
  against Apple's schema (a bad configuration is a 400 that changes nothing; a Mac too old
  for the keys gets the command without them), and a changed configuration reaches an
  installed app as a Settings ApplicationConfiguration item;
- an InstalledApplicationList answer reconciles: a required app it lacks is installed, one it
  lists is installed with its version;
- an iPhone with DDM on gets its required App Store app through an ``app.managed``
  declaration (the simulator's DDM side applies it), never InstallApplication, and its state
  comes back from ``app.managed.list``, channel ``ddm``; unassigned, the declaration goes and
  so does the state.
"""

from __future__ import annotations

import json
import plistlib
from typing import Any

from mdmserver.protocol.commands import new_command
from mdmserver.simulator.catalog import DeviceSpec
from mdmserver.simulator.ddm import DDMState
from mdmserver.simulator.stats import Stats
from mdmserver.simulator.transport import Transport
from mdmserver.storage.sql.inventory_store import InventoryStore
from mdmserver.storage.sql.schema import app_assignments
from mdmserver.testing.http import send
from mdmserver.web.runtime import runtime
from tests.apps.conftest import ADAM_ID
from tests.apps.test_desired_http import MAC, PAGES, Mac, _ask_list, _listing, _states, _types

VPN = "com.example.vpn"
CONFIG = {"ServerURL": "https://vpn.example.com", "Port": 443, "Tags": ["a", "b"]}


def _vpn(api: Any, **assignment: Any) -> tuple[str, Any]:
    vpn = api.post(
        "/api/v1/apps",
        {"name": "vpn", "kind": "ios_inhouse", "bundle_id": VPN,
         "manifest_url": "https://apps.example.com/vpn.plist"},
    ).get_json()["id"]  # fmt: skip
    reply = api.post(f"/api/v1/apps/{vpn}/assignments", {"target": "all", **assignment})
    return vpn, reply


def _enroll(server: str, device: Any) -> None:
    assert send(server, device.authenticate()).status_code == 200
    assert send(server, device.token_update()).status_code == 200


def _rows(app: Any) -> list[Any]:
    with runtime(app).engine.connect() as conn:
        return list(conn.execute(app_assignments.select()))


def test_bad_configuration_or_flags_are_refused_and_change_nothing(app, api):
    vpn, reply = _vpn(api, configuration=CONFIG, management_flags=5)
    assert reply.status_code == 200
    listed = reply.get_json()["assignments"]
    assert listed == [{"target": "all", "behaviour": "required", "management_flags": 5,
                       "configuration": CONFIG}]  # fmt: skip
    for body, words in (
        ({"configuration": {"Key": None}}, "null has no property list form"),
        ({"configuration": ["not", "a", "dict"]}, "a JSON object"),
        ({"configuration": {"Big": "x" * 70_000}}, "at most 65536"),
        ({"configuration": {"n": 2**65}}, "64 bits"),
        ({"management_flags": 2}, "one of 0, 1, 4, 5"),
        ({"management_flags": True}, "one of 0, 1, 4, 5"),
    ):
        refused = api.post(f"/api/v1/apps/{vpn}/assignments", {"target": "all", **body})
        assert refused.status_code == 400, refused.text
        assert words in refused.get_json()["error"]
    assert api.get(f"/api/v1/apps/{vpn}").get_json()["assignments"] == listed
    assert [(r.management_flags, json.loads(r.configuration)) for r in _rows(app)] == [(5, CONFIG)]
    # Packages are installed with InstallEnterpriseApplication: its rangelist is 1 only.
    pkg = api.post(
        "/api/v1/apps",
        {"name": "agent", "kind": "macos_pkg", "bundle_id": "com.example.agent",
         "manifest_url": "https://apps.example.com/agent.plist"},
    ).get_json()["id"]  # fmt: skip
    refused = api.post(f"/api/v1/apps/{pkg}/assignments", {"target": "all", "management_flags": 4})
    assert refused.status_code == 400 and "InstallEnterpriseApplication" in refused.text


def test_configuration_and_flags_reach_the_install_and_settings(app, api, live_server, pki):
    _vpn(api, configuration=CONFIG, management_flags=5)
    device = pki.device(serial_number="C02PHONEVPN", os_version="17.1")
    phone = Mac(live_server, device)
    _enroll(live_server, device)
    first = phone.session({"ManagedApplicationList": _listing()})
    assert _types(first) == ["ManagedApplicationList", "InstallApplication"]
    install = first[1]["Command"]
    assert install["Configuration"] == CONFIG and install["ManagementFlags"] == 5
    assert install["ManifestURL"] == "https://apps.example.com/vpn.plist"

    # Installed: the same configuration is not sent again.
    _ask_list(app, device)
    assert _types(phone.session({"ManagedApplicationList": _listing(**{VPN: "Managed"})})) == [
        "ManagedApplicationList"
    ]
    # The admin changes it: the installed app gets it through Settings, not a reinstall.
    changed = {**CONFIG, "Port": 8443}
    assert api.post("/api/v1/apps/vpn/assignments", {"target": "all", "configuration": changed})
    _ask_list(app, device)
    received = phone.session({"ManagedApplicationList": _listing(**{VPN: "Managed"})})
    assert _types(received) == ["ManagedApplicationList", "Settings"]
    assert received[1]["Command"]["Settings"] == [
        {"Item": "ApplicationConfiguration", "Identifier": VPN, "Configuration": changed}
    ]
    # Flags 0: no ManagementFlags at all (the app stays when MDM is removed).
    assert (
        api.post(
            "/api/v1/apps/vpn/assignments", {"target": "all", "management_flags": 0}
        ).get_json()["assignments"][0]["management_flags"]
        == 0
    )
    _ask_list(app, device)
    again = phone.session({"ManagedApplicationList": _listing(**{VPN: "ManagedButUninstalled"})})
    assert _types(again) == ["ManagedApplicationList", "InstallApplication"]
    assert "ManagementFlags" not in again[1]["Command"]
    assert "Configuration" not in again[1]["Command"]


def test_an_old_mac_gets_the_install_without_keys_its_os_lacks(api, live_server, pki):
    """Apple's schema: ManagementFlags and Configuration exist on macOS from 11.0."""
    api.post("/api/v1/apps", {"name": "tool", "kind": "macos_pkg", "bundle_id": "com.example.t",
                              "manifest_url": "https://apps.example.com/t.plist"})  # fmt: skip
    assert (
        api.post(
            "/api/v1/apps/tool/assignments",
            {"target": "all", "management_flags": 1, "configuration": CONFIG},
        ).status_code
        == 200
    )
    old = pki.device(serial_number="C02OLDMAC01", os_version="10.15.7", **MAC)
    _enroll(live_server, old)
    received = Mac(live_server, old).session({"ManagedApplicationList": _listing()})
    assert _types(received) == ["ManagedApplicationList", "InstallEnterpriseApplication"]
    command = received[1]["Command"]
    assert command["ManifestURL"] == "https://apps.example.com/t.plist"
    assert "ManagementFlags" not in command and "Configuration" not in command
    recent = pki.device(serial_number="C02NEWMAC01", os_version="14.5", **MAC)
    _enroll(live_server, recent)
    command = Mac(live_server, recent).session({"ManagedApplicationList": _listing()})[1]["Command"]
    assert command["ManagementFlags"] == 1 and command["Configuration"] == CONFIG


def test_installed_application_list_reconciles(app, api, live_server, pki):
    vpn, _ = _vpn(api)
    device = pki.device(serial_number="C02PHONEIAL", os_version="17.1")
    phone = Mac(live_server, device)
    _enroll(live_server, device)
    listing = {"InstalledApplicationList": [
        {"Identifier": VPN, "Name": "VPN", "ShortVersion": "3.2", "Version": "320"},
        {"Identifier": "com.example.game", "Name": "Game", "ShortVersion": "1.0"},
    ]}  # fmt: skip
    # The device lists the app: installed, with its version, and nothing is sent.
    runtime(app).storage.enqueue(new_command("InstalledApplicationList"), [device.udid])
    received = phone.session({"InstalledApplicationList": ("Acknowledged", listing)})
    assert "InstallApplication" not in _types(received)
    state = _states(api, vpn)[device.udid]
    assert (state["status"], state["installed_version"], state["channel"]) == (
        "installed", "3.2", "command",
    )  # fmt: skip
    # The user removed it: the next list lacks it, and it is installed again.
    runtime(app).storage.enqueue(new_command("InstalledApplicationList"), [device.udid])
    without = {"InstalledApplicationList": listing["InstalledApplicationList"][1:]}
    again = phone.session({"InstalledApplicationList": ("Acknowledged", without)})
    assert _types(again) == ["InstalledApplicationList", "InstallApplication"]
    # The device's app inventory knows the unmanaged app too.
    apps = InventoryStore(runtime(app).engine).facts(device.udid)["installed_apps"]
    assert [a["id"] for a in apps] == ["com.example.game"]


def _iphone_spec(device: Any) -> DeviceSpec:
    return DeviceSpec(
        platform="iOS", udid=device.udid, serial_number=device.serial_number,
        product_name=device.product_name, model_name="iPhone", model=device.model,
        marketing_name="iPhone 14 Pro", os_version=device.os_version, build_version="21E219",
        capacity_gb=128.0,
    )  # fmt: skip


class DDMPhone(Mac):
    """A virtual iPhone whose DDM side is the simulator's: a DeclarativeManagement command
    makes it sync, apply its declarations and report status."""

    def __init__(self, server: str, device: Any) -> None:
        super().__init__(server, device)
        self.ddm = DDMState(_iphone_spec(device))
        self.transport = Transport(server, stats=Stats())
        self.synced = 0

    def session(self, answers: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        answers = answers or {}
        received = []
        reply = send(self.server, self.device.idle())
        while reply.status_code == 200 and reply.content:
            command = plistlib.loads(reply.content)
            kind = command["Command"]["RequestType"]
            received.append(command)
            status, extra = answers.get(kind, ("Acknowledged", {}))
            reply = send(self.server, self.device.result(status, command["CommandUUID"], **extra))
            if kind == "DeclarativeManagement":
                self.ddm.sync(self.device, self.transport, self.transport.stats)
                self.synced += 1
        assert reply.status_code == 200, reply.text
        return received


def test_a_ddm_iphone_gets_its_app_store_app_through_app_managed(
    app, api, live_server, pki, stoken
):
    assert api.client.put(
        "/api/v1/apps/vpp/token", json={"token": stoken}, headers=api.headers()
    ).status_code == 200  # fmt: skip
    pages = api.post("/api/v1/apps", {"name": "pages", "kind": "app_store", "bundle_id": PAGES,
                                      "adam_id": ADAM_ID}).get_json()["id"]  # fmt: skip
    device = pki.device(serial_number="C02PHONEDDM", os_version="17.4")
    reply = api.post(f"/api/v1/apps/{pages}/licenses", {"serials": [device.serial_number]})
    assert reply.get_json()["status"] == "COMPLETE"
    assert api.post(f"/api/v1/apps/{pages}/assignments", {"target": "all"}).status_code == 200

    phone = DDMPhone(live_server, device)
    _enroll(live_server, device)
    received = phone.session({"ManagedApplicationList": _listing()})
    assert "InstallApplication" not in _types(received)
    assert phone.synced >= 1
    declared = phone.ddm.declarations[f"com.mdmserver.ddm.app.{pages}"]
    assert declared.type == "com.apple.configuration.app.managed"
    assert declared.payload == {
        "AppStoreID": ADAM_ID,
        "InstallBehavior": {"Install": "Required", "License": {"Assignment": "Device"}},
        "IncludeInBackup": True,
    }
    state = _states(api, pages)[device.udid]
    assert (state["channel"], state["status"], state["installed_version"]) == (
        "ddm", "installed", "14.2",
    )  # fmt: skip
    # Inventory keeps DDM's app list too (compliance reads it).
    ddm_apps = InventoryStore(runtime(app).engine).facts(device.udid)["ddm_apps"]
    assert [(a["id"], a["state"], a["version"]) for a in ddm_apps] == [(PAGES, "managed", "14.2")]
    # A ManagedApplicationList that lacks it changes nothing: DDM, not a command, delivers it.
    _ask_list(app, device)
    assert _types(phone.session({"ManagedApplicationList": _listing()})) == [
        "ManagedApplicationList"
    ]

    # Unassigned: the declaration goes, the device removes the app and says so.
    assert api.delete(f"/api/v1/apps/{pages}/assignments/all").status_code == 200
    assert f"com.mdmserver.ddm.app.{pages}" not in [
        d["Identifier"] for d in api.get("/api/v1/declarations").get_json()["declarations"]
    ]
    phone.session()
    assert f"com.mdmserver.ddm.app.{pages}" not in phone.ddm.declarations
    assert device.udid not in _states(api, pages)


def test_the_cli_sets_flags_and_configuration_and_declares_for_ddm(app, api, tmp_path):
    """`mdmserver apps assign` checks the same way, is audited, and keeps the App Store app's
    app.managed declaration in step (it is the same service)."""
    from click.testing import CliRunner

    from mdmserver.cli import main

    config = runtime(app).config
    env = {"MDM_HOME": str(config.home), "MDM_DATABASE_URL": config.database_url,
           "MDM_VPP_URL": config.vpp_url, "MDM_SERVER_URL": config.server_url}  # fmt: skip

    def cli(*args: str) -> Any:
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    pages = api.post("/api/v1/apps", {"name": "pages", "kind": "app_store", "bundle_id": PAGES,
                                      "adam_id": ADAM_ID}).get_json()["id"]  # fmt: skip
    settings = tmp_path / "pages.plist"
    settings.write_bytes(plistlib.dumps({"Theme": "dark"}))
    ran = cli(
        "apps", "assign", "pages", "--management-flags", "5", "--configuration", str(settings)
    )
    assert ran.exit_code == 0, ran.output
    listed = api.get(f"/api/v1/apps/{pages}").get_json()["assignments"]
    assert listed == [{"target": "all", "behaviour": "required", "management_flags": 5,
                       "configuration": {"Theme": "dark"}}]  # fmt: skip
    # A configuration: delivered by command everywhere, so no app.managed declaration.
    identifiers = [
        d["Identifier"] for d in api.get("/api/v1/declarations").get_json()["declarations"]
    ]
    assert f"com.mdmserver.ddm.app.{pages}" not in identifiers
    bad = cli("apps", "assign", "pages", "--tag", "lab", "--management-flags", "3")
    assert bad.exit_code != 0 and "management_flags" in bad.output
    assert cli("apps", "assign", "pages", "--management-flags", "4").exit_code == 0
    declared = api.get(f"/api/v1/declarations/com.mdmserver.ddm.app.{pages}").get_json()
    assert declared["Payload"]["IncludeInBackup"] is False  # flag 4: no backup of its data
    entries = runtime(app).admin.store.audit_entries(limit=3)
    assert [(e.action, e.outcome.split(":")[0]) for e in entries] == [
        ("app.assign", "ok"),
        ("app.assign", "refused 400"),
        ("app.assign", "ok"),
    ]
    # The app's declarations follow its assignments: the DDM API does not change them.
    refused = api.delete(f"/api/v1/declarations/com.mdmserver.ddm.app.{pages}.activation")
    assert refused.status_code == 409
