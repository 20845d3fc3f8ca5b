"""An enrolled emulated device that answers the inventory the server asks for, over HTTP."""

from __future__ import annotations

import plistlib
from typing import Any

import pytest
import requests

from mdmserver.testing.device import VirtualDevice
from mdmserver.testing.http import send
from mdmserver.web.runtime import runtime

CLEAN = {
    "DeviceInformation": {
        "QueryResponses": {
            "OSVersion": "17.4",
            "BuildVersion": "21E219",
            "ProductName": "iPhone15,2",
            "Model": "MQ9T3",
            "ModelName": "iPhone",
            "SerialNumber": "C02TEST00001",
            "IsSupervised": True,
            "BatteryLevel": 0.8,
        }
    },
    "SecurityInfo": {
        "SecurityInfo": {
            "PasscodePresent": True,
            "PasscodeCompliant": True,
            "HardwareEncryptionCaps": 3,
        }
    },
    "ProfileList": {"ProfileList": [{"PayloadIdentifier": "com.example.wifi", "PayloadUUID": "A"}]},
    "InstalledApplicationList": {
        "InstalledApplicationList": [{"Identifier": "com.apple.Pages", "Name": "Pages"}]
    },
    "CertificateList": {"CertificateList": []},
    "ManagedApplicationList": {"ManagedApplicationList": {}},
}


def drive(base_url: str, device: VirtualDevice, answers: dict[str, Any]) -> list[str]:
    """Poll and answer every command until the queue is empty; the request types answered."""
    seen = []
    reply = send(base_url, device.idle())
    while reply.status_code == 200 and reply.content:
        command = plistlib.loads(reply.content)
        request_type = command["Command"]["RequestType"]
        seen.append(request_type)
        reply = send(
            base_url,
            device.result("Acknowledged", command["CommandUUID"], **answers.get(request_type, {})),
        )
    assert reply.status_code == 200, reply.text
    return seen


def enroll(
    base_url: str, device: VirtualDevice, answers: dict[str, Any] | None = None
) -> list[str]:
    assert send(base_url, device.authenticate()).status_code == 200
    assert send(base_url, device.token_update()).status_code == 200
    return drive(base_url, device, CLEAN if answers is None else answers)


@pytest.fixture
def keys(app: Any) -> dict[str, str]:
    api_keys = runtime(app).admin.api_keys
    return {
        scope: api_keys.create(f"{scope}-key", scope, actor="test").key
        for scope in ("trust", "admin")
    }


class Client:
    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self.key = key

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.key}", **kwargs.pop("headers", {})}
        return requests.get(self.base_url + path, headers=headers, timeout=10, **kwargs)

    def put(self, path: str, body: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.key}"}
        return requests.put(self.base_url + path, json=body, headers=headers, timeout=10)


@pytest.fixture
def trust(live_server: str, keys: dict[str, str]) -> Client:
    return Client(live_server, keys["trust"])


@pytest.fixture
def admin(live_server: str, keys: dict[str, str]) -> Client:
    return Client(live_server, keys["admin"])


POLICY = {
    "passcode_present": True,
    "passcode_compliant": True,
    "hardware_encryption": True,
    "required_profiles": ["com.example.wifi"],
    "max_checkin_age_hours": 24,
    "identity_cert_min_days": 7,
}


@pytest.fixture
def policy(admin: Client) -> dict[str, Any]:
    reply = admin.put("/api/v1/compliance/policy", POLICY)
    assert reply.status_code == 200, reply.text
    return reply.json()["policy"]
