"""The scheduled app reconcile and the managed app configuration's Settings answers, over real
HTTP on SQLite and PostgreSQL:

- the ``apps_reconcile`` upkeep task asks a device with app assignments for its
  ManagedApplicationList once its last one is older than ``apps_reconcile_interval_hours``, or
  once a failed install's backoff has passed; never a second one while one is queued; a
  required app the user removed comes back when the device answers;
- a Settings ApplicationConfiguration command the device refuses (an Error answer, or an item
  of its Settings results with Status Error) keeps the ErrorChain in the app's state
  (``GET /api/v1/apps/<app>/devices``), is sent again after the backoff, and an Acknowledged
  one keeps the configuration as applied.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from mdmserver.storage.sql.schema import app_device_lists, app_device_states
from mdmserver.web.runtime import runtime
from tests.apps.test_app_state_http import CONFIG, VPN, _enroll, _vpn
from tests.apps.test_desired_http import (
    MAC,
    PAGES,
    Mac,
    _ask_list,
    _listing,
    _setup,
    _states,
    _types,
)

CHAIN = [{"ErrorCode": 4001, "ErrorDomain": "MCMDMErrorDomain",
          "LocalizedDescription": "The app configuration could not be applied."}]  # fmt: skip


def _upkeep(app: Any) -> int:
    return runtime(app).maintenance["apps_reconcile"]()


def _queued_lists(app: Any, device: Any) -> int:
    return [q.request_type for q in runtime(app).storage.queue(device.udid)].count(
        "ManagedApplicationList"
    )


def _age(app: Any, table: Any, column: str, device: Any, by: timedelta) -> None:
    with runtime(app).engine.begin() as conn:
        conn.execute(
            update(table)
            .where(table.c.device_id == device.udid)
            .values({column: datetime.now(UTC) - by})
        )


def test_the_schedule_brings_back_a_removed_required_app(app, api, live_server, pki, stoken):
    device = pki.device(serial_number="C02MAC0SCHED", **MAC)
    quiet = pki.device(serial_number="C02MAC0QUIET", **MAC)  # listed recently: not asked
    pages, _ = _setup(api, stoken, device.serial_number)
    mac = Mac(live_server, device)
    for each in (device, quiet):
        _enroll(live_server, each)
        Mac(live_server, each).session({"ManagedApplicationList": _listing(**{PAGES: "Managed"})})
    assert runtime(app).apps.store.listed_at(device.udid) is not None  # the answer was noted
    assert _states(api, pages)[device.udid]["status"] == "installed"
    assert _upkeep(app) == 0  # both listed just now

    # A day later (the default interval) the device is asked again, once.
    _age(app, app_device_lists, "listed_at", device, timedelta(hours=25))
    assert _upkeep(app) == 1
    assert _queued_lists(app, device) == 1 and _queued_lists(app, quiet) == 0
    assert _upkeep(app) == 0  # one is already queued: not a second
    assert _queued_lists(app, device) == 1
    # The user had removed the app: the answer brings it back.
    received = mac.session({"ManagedApplicationList": _listing(**{PAGES: "ManagedButUninstalled"})})
    assert _types(received) == ["ManagedApplicationList", "InstallApplication"]
    assert _states(api, pages)[device.udid]["status"] == "installing"
    assert _upkeep(app) == 0  # and it was listed just now


def test_the_schedule_retries_a_failed_install_after_its_backoff(
    app, api, live_server, pki, stoken
):
    device = pki.device(serial_number="C02MAC0RETRY", **MAC)
    pages, _ = _setup(api, stoken, device.serial_number)
    mac = Mac(live_server, device)
    _enroll(live_server, device)
    failing = ("Error", {"ErrorChain": CHAIN})
    mac.session({"ManagedApplicationList": _listing(), "InstallApplication": failing})
    assert _states(api, pages)[device.udid]["status"] == "failed"
    assert _upkeep(app) == 0  # the backoff (5 minutes after a first failure) has not passed

    _age(app, app_device_states, "updated_at", device, timedelta(minutes=6))
    assert _upkeep(app) == 1 and _upkeep(app) == 0
    received = mac.session({"ManagedApplicationList": _listing()})
    assert _types(received) == ["ManagedApplicationList", "InstallApplication"]
    assert _states(api, pages)[device.udid]["attempts"] == 2

    # Unassigned, a failed install is no reason to ask again.
    mac.session({"InstallApplication": failing})
    _age(app, app_device_states, "updated_at", device, timedelta(hours=25))
    assert api.delete(f"/api/v1/apps/{pages}/assignments/all").status_code == 200
    assert _upkeep(app) == 0


def _configured_phone(app: Any, api: Any, live_server: str, pki: Any, serial: str) -> Any:
    """An iPhone with the VPN app installed, then a new configuration: its Settings command
    queued (the phone's session not run yet)."""
    _vpn(api, configuration=CONFIG)
    device = pki.device(serial_number=serial, os_version="17.1")
    phone = Mac(live_server, device)
    _enroll(live_server, device)
    phone.session({"ManagedApplicationList": _listing()})
    _ask_list(app, device)
    phone.session({"ManagedApplicationList": _listing(**{VPN: "Managed"})})
    changed = {**CONFIG, "Port": 8443}
    assert api.post("/api/v1/apps/vpn/assignments", {"target": "all", "configuration": changed})
    _ask_list(app, device)
    return phone


def test_a_refused_configuration_keeps_its_error_chain_and_is_sent_again(
    app, api, live_server, pki
):
    phone = _configured_phone(app, api, live_server, pki, "C02PHONECFG1")
    device = phone.device
    installed = {"ManagedApplicationList": _listing(**{VPN: "Managed"})}
    refused = phone.session({**installed, "Settings": ("Error", {"ErrorChain": CHAIN})})
    assert _types(refused) == ["ManagedApplicationList", "Settings"]
    state = _states(api, "vpn")[device.udid]
    assert state["status"] == "installed"  # the app is there; its configuration is not
    sent = state["configuration"]
    assert (sent["status"], sent["attempts"]) == ("failed", 1)
    assert sent["error"]["ErrorChain"][0]["ErrorCode"] == 4001
    assert sent["retry_at"] > sent["updated_at"]
    assert state["configuration_sha256"] is None  # cleared: the next reconcile sends it again

    # Within the backoff the next list sends nothing; the schedule does not ask either.
    _ask_list(app, device)
    assert _types(phone.session(installed)) == ["ManagedApplicationList"]
    assert _upkeep(app) == 0
    # Past it, the schedule asks for the list and the answer sends the Settings again.
    _age(app, app_device_states, "configuration_updated_at", device, timedelta(minutes=6))
    assert _upkeep(app) == 1
    again = phone.session(installed)
    assert _types(again) == ["ManagedApplicationList", "Settings"]
    assert again[1]["Command"]["Settings"][0]["Configuration"]["Port"] == 8443
    sent = _states(api, "vpn")[device.udid]["configuration"]
    assert (sent["status"], sent["attempts"], sent["error"]) == ("applied", 0, None)
    assert _states(api, "vpn")[device.udid]["configuration_sha256"]  # kept
    _ask_list(app, device)
    assert _types(phone.session(installed)) == ["ManagedApplicationList"]  # not sent again


def test_an_item_failing_in_an_acknowledged_settings_answer_counts_as_refused(
    app, api, live_server, pki
):
    phone = _configured_phone(app, api, live_server, pki, "C02PHONECFG2")
    item = {"Status": "Error", "ErrorChain": CHAIN, "Identifier": VPN}
    answers = {
        "ManagedApplicationList": _listing(**{VPN: "Managed"}),
        "Settings": ("Acknowledged", {"Settings": [item]}),
    }
    assert _types(phone.session(answers)) == ["ManagedApplicationList", "Settings"]
    sent = _states(api, "vpn")[phone.device.udid]["configuration"]
    assert sent["status"] == "failed"
    assert sent["error"]["identifier"] == VPN
    assert sent["error"]["ErrorChain"] == CHAIN
