"""The rollout of a required app to every device it targets at once (apps/rollout.py), on
SQLite and PostgreSQL: licensed devices get one install command per platform (the iOS one with
its PurchaseMethod option), unlicensed and untargeted ones nothing, a second rollout queues
nothing again, and the devices' answers move their states on as for any install."""

from __future__ import annotations

import plistlib
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


def test_a_required_app_is_queued_to_every_licensed_targeted_device(
    app, api, live_server, pki, stoken, fake_vpp
):
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
    declarations = AppDeclarations(store, runtime(app).ddm.service)

    assert roll_out(store, storage, service.server_url, pages).total == 0  # not assigned yet
    api.post(f"/api/v1/apps/{pages}/assignments", {"target": "tag:field"})
    done = roll_out(
        store, storage, service.server_url, pages, declared=declarations.is_declared(pages)
    )
    assert done.queued == {"iOS": 1, "macOS": 1}, done
    # The DDM phone has its declaration sync queued, and no InstallApplication beside it.
    assert _installs(app, ddm_phone) == [] and _queue(app, ddm_phone) != []
    [(kind, phone_uuid)] = _installs(app, phone)
    [(_, mac_uuid)] = _installs(app, mac)
    assert kind == "InstallApplication" and phone_uuid != mac_uuid  # one command per platform
    assert _installs(app, unlicensed) == [] and _installs(app, untagged) == []
    states = {s["device_id"]: s for s in store.app_states(pages)}
    assert set(states) == {phone.udid, mac.udid}
    assert {(s["status"], s["attempts"]) for s in states.values()} == {("pending", 1)}
    again = roll_out(store, storage, service.server_url, pages, declared=True)
    assert again.total == 0  # nothing twice

    command = _next_install(live_server, phone)
    assert command["Command"]["Options"] == {"PurchaseMethod": 1}
    assert command["Command"]["iTunesStoreID"] == int(ADAM_ID)
    send(live_server, phone.result("Acknowledged", command["CommandUUID"]))
    assert store.device_states(phone.udid)[pages]["status"] == "installing"
    mac_command = _next_install(live_server, mac)["Command"]
    assert "Options" not in mac_command  # PurchaseMethod is an iOS key
