"""Inventory answers with values no column can hold, over real HTTP on SQLite and PostgreSQL.

Before, a 400-digit DeviceCapacity made the parser raise and a 100-digit HardwareEncryptionCaps
failed the insert, so the whole answer was dropped. Now such a value is stored as unknown (with a
warning in the log) and the rest of the answer is kept.
"""

from __future__ import annotations

import copy
import logging
import plistlib

from sqlalchemy import select

from mdmserver.storage.sql.schema import inventory_answers
from mdmserver.testing.device import SignedRequest
from mdmserver.testing.http import send
from mdmserver.web.runtime import runtime
from tests.trust.conftest import CLEAN


def test_out_of_range_numbers_are_unknown_and_the_rest_is_kept(
    app, live_server, pki, trust, policy, caplog
):
    answers = copy.deepcopy(CLEAN)
    queries = answers["DeviceInformation"]["QueryResponses"]
    # plistlib writes no integer beyond 64 bits; a device's XML can hold any: patched in below.
    queries["DeviceCapacity"] = 111111
    queries["AvailableDeviceCapacity"] = 222222
    queries["DeviceName"] = "tab\tin the name"
    answers["SecurityInfo"]["SecurityInfo"]["HardwareEncryptionCaps"] = 333333
    huge = {
        b"111111": b"9" * 400,
        b"222222": b"1" + b"0" * 320,  # beyond a float as well
        b"333333": b"7" * 100,
    }
    device = pki.device(key_type="ec")
    assert send(live_server, device.authenticate()).status_code == 200
    assert send(live_server, device.token_update()).status_code == 200
    with caplog.at_level(logging.WARNING, logger="mdmserver.inventory"):
        reply = send(live_server, device.idle())
        while reply.content:
            command = plistlib.loads(reply.content)
            request_type = command["Command"]["RequestType"]
            result = device.result(
                "Acknowledged", command["CommandUUID"], **answers.get(request_type, {})
            )
            body = result.body
            for placeholder, digits in huge.items():
                body = body.replace(b"<integer>" + placeholder, b"<integer>" + digits)
            headers = {**result.headers, "Mdm-Signature": device.sign(body)}
            reply = send(live_server, SignedRequest(result.path, body, headers))
            assert reply.status_code == 200, (request_type, reply.text)
    facts = runtime(app).inventory.inventory.store.facts(device.udid)
    assert facts["storage_capacity_gb"] is None and facts["storage_available_gb"] is None
    assert facts["device_name"] is None and facts["hardware_encryption_caps"] is None
    # ... and everything else the same answers said is there.
    assert facts["os_version"] == "17.4" and facts["serial_number"] == "C02TEST00001"
    assert facts["supervised"] is True and facts["battery_level"] == 0.8
    assert facts["passcode_present"] is True and facts["passcode_compliant"] is True
    assert facts["profiles"][0]["identifier"] == "com.example.wifi"
    warnings = [r for r in caplog.records if r.getMessage() == "inventory_value_unknown"]
    assert len(warnings) == 4
    # The raw answers are kept too, and trust still answers.
    with runtime(app).engine.connect() as conn:
        kinds = conn.execute(
            select(inventory_answers.c.request_type).where(
                inventory_answers.c.device_id == device.udid
            )
        ).scalars()
        assert {"DeviceInformation", "SecurityInfo"} <= set(kinds)
    reply = trust.get(f"/api/v1/trust/devices/{device.udid}")
    assert reply.status_code == 200 and reply.json()["managed"] is True
