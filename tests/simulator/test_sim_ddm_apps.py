"""Simulated DDM-capable devices and App Store apps through ``app.managed``, over real HTTP, on
SQLite and PostgreSQL: an install that fails shows the device's ``Error.InstallFailed`` reason
in the app's device states and succeeds once the failure clears; a user cannot delete the
required app (Apple's Required)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from sqlalchemy import insert

from mdmserver.simulator.catalog import make_specs
from mdmserver.simulator.fleet import Fleet
from mdmserver.storage.sql.engine import make_engine
from mdmserver.storage.sql.schema import device_tags
from mdmserver.testing.fake_vpp import FakeVpp, make_token, serve_fake_vpp

PAGES_ADAM, PAGES = "361309726", "com.apple.Pages"
SPECS = make_specs(1, macos_share=0.0, seed=0)
PHONE = SPECS[0]  # iOS 18: app.managed (iOS 17.2 and later)


@pytest.fixture
def stoken() -> str:
    return make_token("Simulated Org", days=300)


@pytest.fixture
def sim_overrides(stoken: str) -> Iterator[dict[str, Any]]:
    fake = FakeVpp(stoken, pending_polls=1)
    fake.add_asset(PAGES_ADAM, total=10)
    with serve_fake_vpp(fake) as url:
        yield {"vpp_url": url}


@pytest.fixture
def fleet(sim_server: Any, stoken: str, database_url: str) -> Iterator[Fleet]:
    sim_server.admin.vpp_token(stoken)
    fleet = sim_server.fleet(devices=1, macos_share=0.0, threads=1)
    assert [d.spec for d in fleet.devices] == SPECS
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(insert(device_tags).values(
                device_id=PHONE.udid, tag="phone", created_at=datetime.now(UTC)))  # fmt: skip
    finally:
        engine.dispose()
    try:
        _session(fleet)  # the enrollment session: inventory, DDM turned on
        yield fleet
    finally:
        fleet.close()


def _session(fleet: Fleet) -> None:
    fleet.wake_all()
    assert fleet.wait_quiet(60)


def _reported(admin: Any) -> dict[str, Any]:
    entries = admin.status_items(PHONE.udid).get("app.managed.list") or []
    return {e["identifier"]: e for e in entries if isinstance(e, dict)}


def test_a_failing_ddm_install_shows_its_reasons_then_installs(sim_server, fleet):
    admin = sim_server.admin
    phone = fleet.device(PHONE.udid)
    assert phone.ddm.enabled
    pages = admin.create_app(name="pages", kind="app_store", bundle_id=PAGES, adam_id=PAGES_ADAM)
    assert admin.assign_licenses(pages["id"], [PHONE.serial_number])["status"] == "COMPLETE"
    phone.apps.fail_install(PAGES)  # until healed
    admin.assign_app(pages["id"], "tag:phone")
    _session(fleet)  # the sync: the declaration arrives, the first attempt fails

    state = admin.app_states(pages["id"])[PHONE.udid]
    assert state["status"] == "failed", state
    assert state["channel"] == "ddm"
    assert _reported(admin)[PAGES]["state"] == "failed"
    assert "Error.InstallFailed" in json.dumps(state)  # the device's reason, visible
    assert _received(phone) == 0  # no InstallApplication: the declaration did it

    _session(fleet)  # a later attempt fails too
    assert admin.app_states(pages["id"])[PHONE.udid]["status"] == "failed"
    phone.apps.heal(PAGES)
    _session(fleet)  # the failure has cleared: the next attempt installs
    state = admin.app_states(pages["id"])[PHONE.udid]
    assert state["status"] == "installed", state
    assert "Error.InstallFailed" not in json.dumps(state)
    assert _reported(admin)[PAGES]["state"] == "managed"

    # The user tries to delete the required app: Apple's Required means they cannot.
    phone.apps.remove_when_installed(PAGES)
    _session(fleet)
    _session(fleet)
    assert not phone.apps.pending_removals()  # the attempt was made
    assert _reported(admin)[PAGES]["state"] == "managed"
    assert admin.app_states(pages["id"])[PHONE.udid]["status"] == "installed"
    assert _received(phone) == 0
    assert fleet.stats.total_errors() == 0, fleet.stats.errors


def _received(device: Any) -> int:
    return sum(1 for kind, _ in device.answered.values() if kind == "InstallApplication")


def _app_declarations(device: Any) -> dict[str, dict[str, Any]]:
    """The app.managed declarations the device fetched and holds, by identifier."""
    return {
        identifier: d.payload
        for identifier, d in device.ddm.declarations.items()
        if d.type == "com.apple.configuration.app.managed"
    }


def _trust(sim_server: Any, udid: str) -> dict[str, Any]:
    reply = requests.get(
        f"{sim_server.url}/api/v1/trust/devices/{udid}",
        headers={"Authorization": f"Bearer {sim_server.trust_key}"},
        timeout=10,
        verify=False,
    )
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def test_an_available_app_is_offered_as_optional_and_required_wins(sim_server, fleet, database_url):
    admin = sim_server.admin
    phone = fleet.device(PHONE.udid)
    pages = admin.create_app(name="pages", kind="app_store", bundle_id=PAGES, adam_id=PAGES_ADAM)
    assert admin.assign_licenses(pages["id"], [PHONE.serial_number])["status"] == "COMPLETE"
    admin.assign_app(pages["id"], "tag:phone", behaviour="available")
    _session(fleet)

    # Offered: one app.managed, Install Optional; nothing installed, no command sent.
    declared = _app_declarations(phone)
    assert len(declared) == 1, declared
    ((identifier, payload),) = declared.items()
    assert identifier.endswith(".optional")
    assert payload["AppStoreID"] == PAGES_ADAM
    assert payload["InstallBehavior"]["Install"] == "Optional"
    assert _reported(admin)[PAGES]["state"] == "optional"
    state = admin.app_states(pages["id"])[PHONE.udid]
    assert state["status"] == "pending" and state["channel"] == "ddm", state
    assert _received(phone) == 0
    assert PAGES not in phone.ddm.installed
    assert _trust(sim_server, PHONE.udid)["compliant"] is True

    # The device is also in a required target: it gets the Required declaration only.
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(insert(device_tags).values(
                device_id=PHONE.udid, tag="field", created_at=datetime.now(UTC)))  # fmt: skip
    finally:
        engine.dispose()
    admin.assign_app(pages["id"], "tag:field")
    _session(fleet)
    _session(fleet)
    declared = _app_declarations(phone)
    assert len(declared) == 1, declared
    ((identifier, payload),) = declared.items()
    assert not identifier.endswith(".optional")
    assert payload["InstallBehavior"]["Install"] == "Required"
    assert not any(".optional" in i for i in phone.ddm.declarations), phone.ddm.declarations
    assert _reported(admin)[PAGES]["state"] == "managed"
    assert admin.app_states(pages["id"])[PHONE.udid]["status"] == "installed"
    assert _received(phone) == 0

    # Back to available only, then not assigned: the Optional declaration goes too.
    admin.unassign_app(pages["id"], "tag:field")
    _session(fleet)
    assert [p["InstallBehavior"]["Install"] for p in _app_declarations(phone).values()] == [
        "Optional"
    ]
    admin.unassign_app(pages["id"], "tag:phone")
    _session(fleet)
    assert _app_declarations(phone) == {}
    assert not any(i.endswith(".optional.activation") for i in phone.ddm.declarations)
    assert _received(phone) == 0
    assert _trust(sim_server, PHONE.udid)["compliant"] is True
    assert fleet.stats.total_errors() == 0, fleet.stats.errors
