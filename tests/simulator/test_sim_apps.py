"""Simulated devices and the server's desired state for apps, over real HTTP, on SQLite and
PostgreSQL: an iPhone and a Mac get a required App Store app (licensed by serial through the
Apps and Books stand-in), the iPhone an in-house app and the Mac a package, each downloaded
with the device's identity and checked against its manifest; the user deletes the App Store
app and it comes back; an unassigned app is removed; a failing install shows its ErrorChain
and is not sent again before its backoff; a device not assigned an app cannot fetch it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, update

from mdmserver.simulator.catalog import make_specs
from mdmserver.simulator.fleet import Fleet
from mdmserver.storage.sql.engine import make_engine
from mdmserver.storage.sql.schema import app_device_states, device_tags
from mdmserver.testing.app_packages import make_ipa, make_pkg
from mdmserver.testing.fake_vpp import FakeVpp, make_token, serve_fake_vpp

PAGES_ADAM, PAGES = "361309726", "com.apple.Pages"
NUMBERS_ADAM, NUMBERS = "361304891", "com.apple.Numbers"
INHOUSE, AGENT = "com.example.inhouse", "com.example.agent"
SPECS = make_specs(2, macos_share=0.5, seed=0)  # the fleet's devices, known before enrolling
PHONE = next(s for s in SPECS if s.platform == "iOS")
MAC = next(s for s in SPECS if s.platform == "macOS")


@pytest.fixture
def stoken() -> str:
    return make_token("Simulated Org", days=300)


@pytest.fixture
def vpp_url(stoken: str) -> Iterator[str]:
    fake = FakeVpp(stoken, pending_polls=1)
    fake.add_asset(PAGES_ADAM, total=10)
    fake.add_asset(NUMBERS_ADAM, total=10)
    with serve_fake_vpp(fake) as url:
        yield url


@pytest.fixture
def sim_overrides(vpp_url: str) -> dict[str, Any]:
    return {"vpp_url": vpp_url}


@pytest.fixture
def fleet(sim_server: Any, stoken: str, database_url: str) -> Iterator[Fleet]:
    sim_server.admin.vpp_token(stoken)
    fleet = sim_server.fleet(devices=2, macos_share=0.5, threads=2)
    assert [d.spec for d in fleet.devices] == SPECS
    engine = make_engine(database_url)
    try:  # as an enrollment token with these tags would have done
        with engine.begin() as conn:
            for device in fleet.devices:
                tag = "mac" if device.spec.platform == "macOS" else "phone"
                conn.execute(insert(device_tags).values(
                    device_id=device.udid, tag=tag, created_at=datetime.now(UTC)))  # fmt: skip
    finally:
        engine.dispose()
    try:
        _session(fleet)  # the enrollment session (inventory, DDM): no apps assigned yet
        yield fleet
    finally:
        fleet.close()


def _session(fleet: Fleet) -> None:
    """Time passes: every device polls once more."""
    fleet.wake_all()
    assert fleet.wait_quiet(60)


def _ask_lists(server: Any, fleet: Fleet) -> None:
    """What the schedule does: ask every device for its ManagedApplicationList, wake it."""
    server.admin.send_command(
        {"RequestType": "ManagedApplicationList"}, targets=[d.udid for d in fleet.devices]
    )
    _session(fleet)


def _received(device: Any, request_type: str) -> int:
    return sum(1 for kind, _ in device.answered.values() if kind == request_type)


def _catalog(admin: Any) -> dict[str, str]:
    """The apps of the test, licensed and assigned; name -> id."""
    pages = admin.create_app(name="pages", kind="app_store", bundle_id=PAGES, adam_id=PAGES_ADAM)
    inhouse = admin.upload_app(
        make_ipa(INHOUSE, "2.1", payload=b"\7" * 30000), kind="ios_inhouse", name="inhouse"
    )
    agent = admin.upload_app(
        make_pkg(payload=b"\3" * 30000), kind="macos_pkg", name="agent", bundle_id=AGENT
    )
    licensed = admin.assign_licenses(pages["id"], [PHONE.serial_number, MAC.serial_number])
    assert licensed["status"] == "COMPLETE", licensed
    admin.assign_app(pages["id"], "all")
    admin.assign_app(inhouse["id"], "tag:phone")
    admin.assign_app(agent["id"], "tag:mac")
    return {"pages": pages["id"], "inhouse": inhouse["id"], "agent": agent["id"]}


def test_devices_get_keep_and_lose_their_apps(sim_server, fleet):
    admin = sim_server.admin
    ids = _catalog(admin)
    phone, mac = fleet.device(PHONE.udid), fleet.device(MAC.udid)

    _ask_lists(sim_server, fleet)  # missing: installed in the same session
    assert set(phone.apps.installed()) >= {PAGES, INHOUSE}
    assert set(mac.apps.installed()) >= {PAGES, AGENT}
    assert INHOUSE not in mac.apps.installed() and AGENT not in phone.apps.installed()
    # Files came from the server's device-authenticated URLs, checked against the manifests.
    assert phone.apps.downloads == [f"/mdm/apps/{ids['inhouse']}/manifest",
                                    f"/mdm/apps/{ids['inhouse']}/file"]  # fmt: skip
    assert mac.apps.downloads == [f"/mdm/apps/{ids['agent']}/file"]  # inline manifest
    assert phone.apps.installed()[INHOUSE].version == "2.1"
    # The assignment's roll-out queued Pages before the list was asked: the phone may have
    # installed it already and listed it Managed in the same session.
    assert admin.app_states(ids["pages"])[PHONE.udid]["status"] in {"installing", "installed"}

    _ask_lists(sim_server, fleet)  # the installs finished: the lists say Managed
    pages = admin.app_states(ids["pages"])
    assert {pages[d.udid]["status"] for d in fleet.devices} == {"installed"}
    assert admin.app_states(ids["inhouse"])[PHONE.udid]["status"] == "installed"
    assert admin.app_states(ids["agent"])[MAC.udid]["status"] == "installing"  # a package
    installs = _received(phone, "InstallApplication")

    # The user deletes the required app by hand: the next list brings it back.
    assert phone.apps.remove_by_user(PAGES)
    assert PAGES not in phone.apps.installed()
    _ask_lists(sim_server, fleet)
    assert PAGES in phone.apps.installed()
    assert _received(phone, "InstallApplication") == installs + 1
    _ask_lists(sim_server, fleet)
    assert admin.app_states(ids["pages"])[PHONE.udid]["status"] == "installed"

    # Unassigned: removed from the device, and its state forgotten once it confirms.
    admin.unassign_app(ids["inhouse"], "tag:phone")
    _ask_lists(sim_server, fleet)
    assert INHOUSE not in phone.apps.installed()
    assert _received(phone, "RemoveApplication") == 1
    assert PHONE.udid not in admin.app_states(ids["inhouse"])
    assert PAGES in phone.apps.installed()  # the others stay
    assert fleet.stats.total_errors() == 0, fleet.stats.errors


def test_a_failing_install_shows_its_error_chain_and_backs_off(sim_server, fleet, database_url):
    admin = sim_server.admin
    numbers = admin.create_app(
        name="numbers", kind="app_store", bundle_id=NUMBERS, adam_id=NUMBERS_ADAM
    )["id"]
    admin.assign_licenses(numbers, [PHONE.serial_number])
    phone = fleet.device(PHONE.udid)
    chain = [
        {"ErrorCode": 12064, "ErrorDomain": "MCMDMErrorDomain",
         "LocalizedDescription": "The app “Numbers” could not be installed.",
         "USEnglishDescription": "The app “Numbers” could not be installed."},
        {"ErrorCode": 509, "ErrorDomain": "ASDErrorDomain",
         "LocalizedDescription": "Not enough storage to download the app."},
    ]  # fmt: skip
    phone.apps.fail_install(NUMBERS, chain)
    admin.assign_app(numbers, "tag:phone")

    _ask_lists(sim_server, fleet)
    state = admin.app_states(numbers)[PHONE.udid]
    assert (state["status"], state["attempts"]) == ("failed", 1)
    assert state["error"]["status"] == "Error"
    assert [c["ErrorDomain"] for c in state["error"]["ErrorChain"]] == [
        "MCMDMErrorDomain", "ASDErrorDomain",
    ]  # fmt: skip
    assert state["retry_at"] > state["updated_at"]
    assert NUMBERS not in phone.apps.installed()

    # Still missing, but within the backoff: the next lists send nothing.
    for _ in range(2):
        _ask_lists(sim_server, fleet)
    assert _received(phone, "InstallApplication") == 1
    assert admin.app_states(numbers)[PHONE.udid]["status"] == "failed"

    # The device can install it now and the backoff has passed: it is sent again, and sticks.
    phone.apps.heal(NUMBERS)
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                update(app_device_states)
                .where(app_device_states.c.device_id == PHONE.udid)
                .values(updated_at=datetime.now(UTC) - timedelta(minutes=6))
            )
    finally:
        engine.dispose()
    _ask_lists(sim_server, fleet)
    assert _received(phone, "InstallApplication") == 2
    assert NUMBERS in phone.apps.installed()
    _ask_lists(sim_server, fleet)
    state = admin.app_states(numbers)[PHONE.udid]
    assert (state["status"], state["attempts"], state["error"]) == ("installed", 0, None)


def test_an_unassigned_or_unenrolled_device_cannot_fetch_an_app(sim_server, fleet):
    """The iPhone is sent an install by hand for an app assigned only to Macs: its download
    is refused and the install fails as a device's would; a wiped device (no identity, so
    unsigned) is refused too."""
    admin = sim_server.admin
    macs_only = admin.upload_app(make_ipa("com.example.maconly"), kind="ios_inhouse",
                                 name="maconly")["id"]  # fmt: skip
    admin.assign_app(macs_only, "tag:mac")
    phone = fleet.device(PHONE.udid)
    url = f"{sim_server.instance.server_url}/mdm/apps/{macs_only}/manifest"
    sent = admin.send_command(
        {"RequestType": "InstallApplication", "ManifestURL": url, "ManagementFlags": 1},
        targets=[PHONE.udid],
    )
    admin.push(PHONE.udid)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = admin.command_status(sent["command_uuid"])
        if status["counts"].get("error"):
            break
        time.sleep(0.2)
    chain = status["targets"][0]["result"]["ErrorChain"]
    assert "download" in chain[0]["LocalizedDescription"]
    assert "com.example.maconly" not in phone.apps.installed()

    fetch = fleet.transport.request
    path = f"/mdm/apps/{macs_only}/manifest"
    refused = fetch("t", "GET", path, headers={"Mdm-Signature": phone.identity.sign(b"")},
                    expect=(403,))  # fmt: skip
    assert "not assigned" in refused.text
    mac = fleet.device(MAC.udid)
    allowed = fetch("t", "GET", path, headers={"Mdm-Signature": mac.identity.sign(b"")})
    assert allowed.content.startswith(b"<?xml")
    mac.wipe()  # erased: nothing left to sign with
    assert fetch("t", "GET", path, expect=(400,)).status_code == 400
