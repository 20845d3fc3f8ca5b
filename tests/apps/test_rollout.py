"""The rollout of a required app to every device it targets at once (apps/rollout.py), on
SQLite and PostgreSQL: licensed devices get one install command per platform (the iOS one with
its PurchaseMethod option), unlicensed and untargeted ones nothing, a second rollout queues
nothing again, and the devices' answers move their states on as for any install."""

from __future__ import annotations

import plistlib
from datetime import UTC, datetime

from sqlalchemy import insert

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


def test_a_required_app_is_queued_to_every_licensed_targeted_device(
    app, api, live_server, pki, stoken
):
    phone = _enrolled(live_server, pki, "C02ROLL0001")
    mac = _enrolled(live_server, pki, "C02ROLL0002", **MAC)
    unlicensed = _enrolled(live_server, pki, "C02ROLL0003")
    untagged = _enrolled(live_server, pki, "C02ROLL0004")
    with runtime(app).engine.begin() as conn:
        for device in (phone, mac, unlicensed):
            conn.execute(insert(device_tags).values(
                device_id=device.udid, tag="field", created_at=datetime.now(UTC)))  # fmt: skip
    assert api.client.put("/api/v1/apps/vpp/token", json={"token": stoken},
                          headers=api.headers()).status_code == 200  # fmt: skip
    pages = api.post("/api/v1/apps", {"name": "pages", "kind": "app_store",
                                      "bundle_id": "com.apple.Pages",
                                      "adam_id": ADAM_ID}).get_json()["id"]  # fmt: skip
    licensed = api.post(f"/api/v1/apps/{pages}/licenses",
                        {"serials": [phone.serial_number, mac.serial_number,
                                     untagged.serial_number]})  # fmt: skip
    assert licensed.get_json()["status"] == "COMPLETE"
    service = runtime(app).apps
    store, storage = service.store, runtime(app).storage

    assert roll_out(store, storage, service.server_url, pages).total == 0  # not assigned yet
    api.post(f"/api/v1/apps/{pages}/assignments", {"target": "tag:field"})
    done = roll_out(store, storage, service.server_url, pages)
    assert done.queued == {"iOS": 1, "macOS": 1}, done
    [(kind, phone_uuid)] = _queue(app, phone)
    [(_, mac_uuid)] = _queue(app, mac)
    assert kind == "InstallApplication" and phone_uuid != mac_uuid  # one command per platform
    assert _queue(app, unlicensed) == [] and _queue(app, untagged) == []
    states = {s["device_id"]: s for s in store.app_states(pages)}
    assert set(states) == {phone.udid, mac.udid}
    assert {(s["status"], s["attempts"]) for s in states.values()} == {("pending", 1)}
    assert roll_out(store, storage, service.server_url, pages).total == 0  # nothing twice

    reply = send(live_server, phone.idle())
    command = plistlib.loads(reply.content)
    assert command["Command"]["Options"] == {"PurchaseMethod": 1}
    assert command["Command"]["iTunesStoreID"] == int(ADAM_ID)
    send(live_server, phone.result("Acknowledged", command["CommandUUID"]))
    assert store.device_states(phone.udid)[pages]["status"] == "installing"
    mac_command = plistlib.loads(send(live_server, mac.idle()).content)["Command"]
    assert "Options" not in mac_command  # PurchaseMethod is an iOS key
