"""The rollout of a required app to every device it targets at once (apps/rollout.py), started
by the assignment itself (a background job of the web server; in the call from the CLI), on
SQLite and PostgreSQL: licensed devices get one install command per platform (the iOS one with
its PurchaseMethod option), unlicensed and untargeted ones nothing, a second rollout queues
nothing again, and the devices' answers move their states on as for any install."""

from __future__ import annotations

import plistlib
import time
from datetime import UTC, datetime

from sqlalchemy import insert

from mdmserver.apps.declarative import AppDeclarations
from mdmserver.apps.rollout import roll_out
from mdmserver.storage.sql.schema import device_tags
from mdmserver.testing.http import drain, send
from mdmserver.web.runtime import runtime
from tests.apps.conftest import ADAM_ID

MAC = {"product_name": "Mac14,2", "model": "Mac14,2", "model_name": "MacBook Air"}


def _enrolled(live_server, pki, serial: str, **facts):
    device = pki.device(serial_number=serial, **facts)
    assert send(live_server, device.authenticate()).status_code == 200
    assert send(live_server, device.token_update()).status_code == 200
    drain(live_server, device)
    return device


def _queue(app, device) -> list[tuple[str, str]]:
    return [(q.request_type, q.command_uuid) for q in runtime(app).storage.queue(device.udid)]


def _next_install(live_server, device) -> dict:
    """The device's next command past the declaration sync (acknowledged on the way)."""
    command = plistlib.loads(send(live_server, device.idle()).content)
    while command["Command"]["RequestType"] == "DeclarativeManagement":
        reply = send(live_server, device.result("Acknowledged", command["CommandUUID"]))
        command = plistlib.loads(reply.content)
    return command


def _installs(app, device) -> list[tuple[str, str]]:
    """The queue without the declaration syncs the app's app.managed declaration brings."""
    return [q for q in _queue(app, device) if q[0] != "DeclarativeManagement"]


def _wait(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _pushed_at(app, device):
    found = runtime(app).pusher.enrollment_status(device.udid)
    return found["last_push_at"] if found else None


def test_a_required_app_is_queued_to_every_licensed_targeted_device(
    app, api, live_server, pki, stoken, fake_vpp
):
    """The assignment itself rolls the app out (a job of the in-process backend): every
    licensed device of the tag that takes it by command has its install queued, is pending
    and is pushed; the DDM phone, the unlicensed and the untagged devices get no install."""
    fake_vpp.add_asset(ADAM_ID, total=4)
    phone = _enrolled(live_server, pki, "C02ROLL0001", os_version="17.1")  # by command
    ddm_phone = _enrolled(live_server, pki, "C02ROLL0005")  # iOS 17.4: app.managed brings it
    mac = _enrolled(live_server, pki, "C02ROLL0002", **MAC)
    unlicensed = _enrolled(live_server, pki, "C02ROLL0003")
    untagged = _enrolled(live_server, pki, "C02ROLL0004")
    with runtime(app).engine.begin() as conn:
        for device in (phone, ddm_phone, mac, unlicensed):
            conn.execute(insert(device_tags).values(
                device_id=device.udid, tag="field", created_at=datetime.now(UTC)))  # fmt: skip
    assert api.client.put("/api/v1/apps/vpp/token", json={"token": stoken},
                          headers=api.headers()).status_code == 200  # fmt: skip
    pages = api.post("/api/v1/apps", {"name": "pages", "kind": "app_store",
                                      "bundle_id": "com.apple.Pages",
                                      "adam_id": ADAM_ID}).get_json()["id"]  # fmt: skip
    licensed = api.post(f"/api/v1/apps/{pages}/licenses",
                        {"serials": [phone.serial_number, mac.serial_number,
                                     ddm_phone.serial_number, untagged.serial_number]})  # fmt: skip
    assert licensed.get_json()["status"] == "COMPLETE"
    service = runtime(app).apps
    store, storage = service.store, runtime(app).storage
    _wait(lambda: runtime(app).pusher.status()["outbox_pending"] == 0, "enrollment pushes")
    before = {d.udid: _pushed_at(app, d) for d in (phone, mac)}

    available = api.post(f"/api/v1/apps/{pages}/assignments",
                         {"target": "tag:field", "behaviour": "available"})  # fmt: skip
    assert available.status_code == 200 and available.get_json()["rollout"] is None
    assert store.app_states(pages) == []  # available: nothing is installed
    reply = api.post(f"/api/v1/apps/{pages}/assignments", {"target": "tag:field"})
    assert reply.status_code == 200, reply.text
    assert reply.get_json()["rollout"] == {"scheduled": True, "backend": "inprocess"}
    states = _wait(
        lambda: (
            found
            if len(found := {s["device_id"]: s for s in store.app_states(pages)}) == 2
            else None
        ),
        "the roll-out job",
    )
    assert set(states) == {phone.udid, mac.udid}
    assert {(s["status"], s["attempts"]) for s in states.values()} == {("pending", 1)}
    # The DDM phone has its declaration sync queued, and no InstallApplication beside it.
    assert _installs(app, ddm_phone) == [] and _queue(app, ddm_phone) != []
    [(kind, phone_uuid)] = _installs(app, phone)
    [(_, mac_uuid)] = _installs(app, mac)
    assert kind == "InstallApplication" and phone_uuid != mac_uuid  # one command per platform
    assert _installs(app, unlicensed) == [] and _installs(app, untagged) == []

    # Each device it was queued to is pushed (no push certificate here: the attempt is kept).
    def pushed_again(device) -> bool:
        at, earlier = _pushed_at(app, device), before[device.udid]
        return at is not None and (earlier is None or at > earlier)

    _wait(lambda: pushed_again(phone) and pushed_again(mac), "the roll-out's pushes")
    declarations = AppDeclarations(store, runtime(app).ddm.service)
    assert declarations.is_declared(pages)
    again = roll_out(store, storage, service.server_url, pages, declared=True)
    assert again.total == 0  # nothing twice

    command = _next_install(live_server, phone)
    assert command["Command"]["Options"] == {"PurchaseMethod": 1}
    assert command["Command"]["iTunesStoreID"] == int(ADAM_ID)
    send(live_server, phone.result("Acknowledged", command["CommandUUID"]))
    assert store.device_states(phone.udid)[pages]["status"] == "installing"
    mac_command = _next_install(live_server, mac)["Command"]
    assert "Options" not in mac_command  # PurchaseMethod is an iOS key


def test_the_cli_rolls_out_in_the_call_and_says_how_many(app, app_config, live_server, pki):
    """A CLI without Redis has no background jobs that outlive it: the roll-out runs in the
    command, which prints the devices queued; their pushes wait in the outbox for the
    server."""
    from click.testing import CliRunner

    from mdmserver.cli import main

    devices = [_enrolled(live_server, pki, f"C02ROLLCLI{i}") for i in range(3)]  # iPhones
    env = {
        "MDM_HOME": str(app_config.home),
        "MDM_DATABASE_URL": app_config.database_url,
        "MDM_VPP_URL": app_config.vpp_url,
        "MDM_SERVER_URL": app_config.server_url,
    }

    def cli(*args: str):
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    added = cli("apps", "add", "--name", "vpn", "--kind", "ios_inhouse",
                "--bundle-id", "com.example.vpn",
                "--manifest-url", "https://apps.example.com/vpn.plist")  # fmt: skip
    assert added.exit_code == 0, added.output
    with runtime(app).engine.begin() as conn:
        for device in devices[:2]:
            conn.execute(insert(device_tags).values(
                device_id=device.udid, tag="lab", created_at=datetime.now(UTC)))  # fmt: skip
    done = cli("apps", "assign", "vpn", "--tag", "lab")
    assert done.exit_code == 0, done.output
    # An in-house app is never declared for DDM: both tagged iPhones get it by command.
    assert "install queued to 2 devices" in done.output, done.output
    for device in devices[:2]:
        assert [k for k, _ in _installs(app, device)] == ["InstallApplication"]
        states = runtime(app).apps.store.device_states(device.udid)
        assert states[runtime(app).apps.get("vpn").id]["status"] == "pending"
    assert _installs(app, devices[2]) == []
