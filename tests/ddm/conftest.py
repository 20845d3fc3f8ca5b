"""A device driven over real HTTP with real signatures through the DDM endpoints."""

from __future__ import annotations

import base64
import json
import plistlib
from typing import Any

import pytest
import requests

from mdmserver.testing.device import VirtualDevice
from mdmserver.testing.http import send
from mdmserver.web.runtime import runtime

PASSCODE = "com.apple.configuration.passcode.settings"


def ddm(base: str, device: VirtualDevice, endpoint: str, data: Any = None, **extra: Any) -> Any:
    """One DeclarativeManagement check-in; ``data`` (a dict) is sent as JSON in Data."""
    message: dict[str, Any] = {
        "MessageType": "DeclarativeManagement",
        "UDID": device.udid,
        "Endpoint": endpoint,
        **extra,
    }
    if data is not None:
        message["Data"] = data if isinstance(data, bytes) else json.dumps(data).encode()
    return send(base, device.checkin(message))


def enroll(base: str, device: VirtualDevice) -> None:
    assert send(base, device.authenticate()).status_code == 200
    assert send(base, device.token_update()).status_code == 200


def sync_commands(base: str, device: VirtualDevice) -> list[dict[str, Any]]:
    """Poll until the queue is empty, acknowledging everything; the SyncTokens of each
    DeclarativeManagement command received (what Data decodes to)."""
    found = []
    reply = send(base, device.idle())
    while reply.status_code == 200 and reply.content:
        command = plistlib.loads(reply.content)
        if command["Command"]["RequestType"] == "DeclarativeManagement":
            found.append(json.loads(command["Command"]["Data"]))
        reply = send(base, device.result("Acknowledged", command["CommandUUID"]))
    assert reply.status_code == 200, reply.text
    return found


class Admin:
    def __init__(self, base: str, key: str) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {key}"}

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(
            method, self.base + "/api/v1" + path, json=body, headers=self.headers, timeout=10
        )

    def put(self, identifier: str, declaration_type: str, payload: dict[str, Any]) -> Any:
        return self.call(
            "PUT", f"/declarations/{identifier}", {"Type": declaration_type, "Payload": payload}
        )


@pytest.fixture
def admin(app: Any, live_server: str) -> Admin:
    key = runtime(app).admin.api_keys.create("ddm-admin", "admin", actor="test").key
    return Admin(live_server, key)


def b64(value: dict[str, Any]) -> bytes:
    return base64.b64encode(json.dumps(value).encode())
