"""Desired state for apps over real HTTP, on SQLite and PostgreSQL: a virtual Mac enrolls, is
asked for its ManagedApplicationList, gets the required App Store app (licensed by serial
through the Apps and Books stand-in) and the macOS package, gets the app back after the user
removes it, has it removed once unassigned; a failed install keeps its ErrorChain; a device
without a license is shown as needing one."""

from __future__ import annotations

import plistlib
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from mdmserver.protocol.commands import new_command
from mdmserver.storage.sql.schema import app_device_states
from mdmserver.testing.app_packages import make_pkg
from mdmserver.testing.http import send
from mdmserver.web.runtime import runtime
from tests.apps.conftest import ADAM_ID

PAGES = "com.apple.Pages"
MAC = {"product_name": "Mac14,2", "model": "Mac14,2", "model_name": "MacBook Air"}


# Turned on at enrollment for every OS that supports it (issue #15): acknowledged, not an
# app command.
NOT_APPS = {"DeclarativeManagement"}


class Mac:
    """A virtual Mac that answers each command with what the test says."""

    def __init__(self, server: str, device: Any) -> None:
        self.server, self.device = server, device

    def session(self, answers: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Idle, then answer every command until none is left; the commands received."""
        answers = answers or {}
        received = []
        reply = send(self.server, self.device.idle())
        while reply.status_code == 200 and reply.content:
            command = plistlib.loads(reply.content)
            kind = command["Command"]["RequestType"]
            if kind not in NOT_APPS:
                received.append(command)
            status, extra = answers.get(kind, ("Acknowledged", {}))
            reply = send(self.server, self.device.result(status, command["CommandUUID"], **extra))
        assert reply.status_code == 200, reply.text
        return received


def _types(commands: list[dict[str, Any]]) -> list[str]:
    return [
        c["Command"]["RequestType"] for c in commands if c["Command"]["RequestType"] not in NOT_APPS
    ]


def _listing(**apps: str) -> tuple[str, dict[str, Any]]:
    return "Acknowledged", {
        "ManagedApplicationList": {bundle: {"Status": status} for bundle, status in apps.items()}
    }


def _setup(api, stoken: str, serial: str) -> tuple[str, str]:
    assert (
        api.client.put(
            "/api/v1/apps/vpp/token", json={"token": stoken}, headers=api.headers()
        ).status_code
        == 200
    )
    pages = api.post("/api/v1/apps", {"name": "pages", "kind": "app_store", "bundle_id": PAGES,
                                      "adam_id": ADAM_ID}).get_json()["id"]  # fmt: skip
    agent = api.client.post(
        "/api/v1/apps/upload?kind=macos_pkg&name=agent&bundle_id=com.example.agent",
        data=make_pkg(), headers=api.headers(),
    ).get_json()["id"]  # fmt: skip
    for app_id in (pages, agent):
        reply = api.post(f"/api/v1/apps/{app_id}/assignments", {"target": "all"})
        assert reply.status_code == 200
    reply = api.post(f"/api/v1/apps/{pages}/licenses", {"serials": [serial]})
    assert reply.get_json()["status"] == "COMPLETE"
    return pages, agent


def _states(api, app_id: str) -> dict[str, dict[str, Any]]:
    rows = api.get(f"/api/v1/apps/{app_id}/devices").get_json()["devices"]
    return {row["device_id"]: row for row in rows}


def _ask_list(app, device) -> None:
    runtime(app).storage.enqueue(new_command("ManagedApplicationList"), [device.udid])


def test_required_apps_are_installed_kept_and_removed(app, api, live_server, pki, stoken):
    device = pki.device(serial_number="C02MAC0APPS", **MAC)
    pages, agent = _setup(api, stoken, device.serial_number)
    mac = Mac(live_server, device)
    assert send(live_server, device.authenticate()).status_code == 200
    assert send(live_server, device.token_update()).status_code == 200

    first = mac.session({"ManagedApplicationList": _listing()})
    assert _types(first) == [
        "ManagedApplicationList", "InstallApplication", "InstallEnterpriseApplication",
    ]  # fmt: skip
    install, package = first[1]["Command"], first[2]["Command"]
    assert install["iTunesStoreID"] == int(ADAM_ID) and install["ManagementFlags"] == 1
    assert "Options" not in install  # PurchaseMethod is an iOS key; this is a Mac
    asset = package["Manifest"]["items"][0]["assets"][0]
    assert asset["url"].endswith(f"/mdm/apps/{agent}/file") and asset["sha256s"]
    assert _states(api, pages)[device.udid]["status"] == "installing"

    # An answer without a list decides nothing (no reinstall storm from a malformed answer).
    _ask_list(app, device)
    odd = mac.session({"ManagedApplicationList": ("Acknowledged", {"ManagedApplicationList": [1]})})
    assert _types(odd) == ["ManagedApplicationList"]

    # Installed: nothing more to do.
    _ask_list(app, device)
    assert _types(mac.session({"ManagedApplicationList": _listing(**{PAGES: "Managed"})})) == [
        "ManagedApplicationList"
    ]
    assert _states(api, pages)[device.udid]["status"] == "installed"
    assert _states(api, agent)[device.udid]["status"] == "installing"  # accepted, not resent

    # The user removed it: it is installed again.
    _ask_list(app, device)
    again = mac.session({"ManagedApplicationList": _listing(**{PAGES: "ManagedButUninstalled"})})
    assert _types(again) == ["ManagedApplicationList", "InstallApplication"]

    # Unassigned: removed, and its state forgotten once the device confirms.
    assert api.delete(f"/api/v1/apps/{pages}/assignments/all").status_code == 200
    _ask_list(app, device)
    removal = mac.session({"ManagedApplicationList": _listing(**{PAGES: "Managed"})})
    assert _types(removal) == ["ManagedApplicationList", "RemoveApplication"]
    assert removal[1]["Command"]["Identifier"] == PAGES
    assert device.udid not in _states(api, pages)


def test_a_failed_install_keeps_its_error_chain_and_backs_off(app, api, live_server, pki, stoken):
    device = pki.device(serial_number="C02MAC0FAIL", **MAC)
    pages, _ = _setup(api, stoken, device.serial_number)
    mac = Mac(live_server, device)
    send(live_server, device.authenticate())
    send(live_server, device.token_update())
    chain = [{"ErrorCode": 12064, "ErrorDomain": "MCInstallationErrorDomain",
              "LocalizedDescription": "The app could not be installed."}]  # fmt: skip
    mac.session({
        "ManagedApplicationList": _listing(),
        "InstallApplication": ("Error", {"ErrorChain": chain}),
    })  # fmt: skip
    state = _states(api, pages)[device.udid]
    assert (state["status"], state["attempts"]) == ("failed", 1)
    assert state["error"]["ErrorChain"][0]["ErrorCode"] == 12064
    assert state["retry_at"] > state["updated_at"]

    # Still missing, but the backoff has not passed: nothing is sent.
    _ask_list(app, device)
    assert _types(mac.session({"ManagedApplicationList": _listing()})) == ["ManagedApplicationList"]
    # Once it has, the install is sent again (and counted).
    with runtime(app).engine.begin() as conn:
        conn.execute(
            update(app_device_states)
            .where(app_device_states.c.device_id == device.udid)
            .values(updated_at=datetime.now(UTC) - timedelta(minutes=6))
        )
    _ask_list(app, device)
    assert _types(mac.session({"ManagedApplicationList": _listing()})) == [
        "ManagedApplicationList",
        "InstallApplication",
    ]
    assert _states(api, pages)[device.udid]["attempts"] == 2


def test_an_unlicensed_device_needs_a_license(api, live_server, pki, stoken):
    device = pki.device(serial_number="C02MAC0NOLIC", **MAC)
    pages, _ = _setup(api, stoken, "C02SOMEONEELSE")
    mac = Mac(live_server, device)
    send(live_server, device.authenticate())
    send(live_server, device.token_update())
    received = mac.session({"ManagedApplicationList": _listing()})
    assert "InstallApplication" not in _types(received)
    assert _states(api, pages)[device.udid]["status"] == "needs_license"


def test_commands_are_checked_against_apples_schema(api, live_server, pki, stoken):
    """An iPhone assigned a macOS package gets no InstallEnterpriseApplication (macOS only in
    Apple's schema): the state says why. Its licensed App Store app is installed with the
    iOS-only PurchaseMethod option (by command: iOS 17.1 does not take DDM's app.managed)."""
    device = pki.device(serial_number="C02PHONE001", os_version="17.1")  # an iPhone
    _, agent = _setup(api, stoken, device.serial_number)
    mac = Mac(live_server, device)
    send(live_server, device.authenticate())
    send(live_server, device.token_update())
    received = mac.session({"ManagedApplicationList": _listing()})
    assert _types(received) == ["ManagedApplicationList", "InstallApplication"]
    assert received[1]["Command"]["Options"] == {"PurchaseMethod": 1}
    pages = api.get("/api/v1/apps/pages/devices").get_json()["devices"][0]
    assert (pages["channel"], pages["status"]) == ("command", "installing")
    refused = _states(api, agent)[device.udid]
    assert refused["status"] == "failed" and "refused_by_schema" in refused["error"]


def test_with_inventory_on_the_list_is_asked_once_and_still_reconciled(app_config, pki, stoken):
    """Inventory asks for the ManagedApplicationList on enrollment and on its schedule; the
    apps feature does not ask twice, and reconciles on inventory's answers."""
    import dataclasses

    from mdmserver.app import create_app
    from mdmserver.testing.http import serve
    from tests.api.conftest import Api, make_key

    inventoried = create_app(dataclasses.replace(app_config, inventory_on_enroll=True))
    try:
        api = Api(inventoried, make_key(inventoried, "apps-admin"))
        device = pki.device(serial_number="C02MAC0INV1", **MAC)
        _setup(api, stoken, device.serial_number)
        with serve(inventoried) as server:
            send(server, device.authenticate())
            send(server, device.token_update())
            received = _types(Mac(server, device).session({"ManagedApplicationList": _listing()}))
        assert received.count("ManagedApplicationList") == 1
        assert "InstallApplication" in received and "InstallEnterpriseApplication" in received
    finally:
        runtime(inventoried).close()
