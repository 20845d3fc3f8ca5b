"""A virtual device: builds the check-in and result plists a real device sends, and signs them.

Used by the tests, the benchmarks and (later) the simulator, so every one of them exercises the
same wire format: XML plists, ``Mdm-Signature`` over the exact body.
"""

from __future__ import annotations

import base64
import plistlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from mdmserver.crypto.ca import PrivateKey
from mdmserver.crypto.cms_sign import sign_detached

CHECKIN_TYPE = "application/x-apple-aspen-mdm-checkin"
CONNECT_TYPE = "application/x-apple-aspen-mdm"


@dataclass
class SignedRequest:
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class VirtualDevice:
    certificate: x509.Certificate
    key: PrivateKey
    topic: str
    udid: str = field(default_factory=lambda: str(uuid.uuid4()).upper())
    serial_number: str = "C02TEST00001"
    os_version: str = "17.4"
    build_version: str = "21E219"
    product_name: str = "iPhone15,2"
    model: str = "iPhone"
    model_name: str = "iPhone"
    push_token: bytes = field(default_factory=lambda: uuid.uuid4().bytes * 2)
    push_magic: str = field(default_factory=lambda: str(uuid.uuid4()).upper())
    signed_attributes: bool = True

    # Building messages -----------------------------------------------------------------------

    def checkin(self, message: dict[str, Any]) -> SignedRequest:
        return self._signed("/mdm/checkin", message, CHECKIN_TYPE)

    def authenticate(self, **extra: Any) -> SignedRequest:
        return self.checkin(
            {
                "MessageType": "Authenticate",
                "Topic": self.topic,
                "UDID": self.udid,
                "SerialNumber": self.serial_number,
                "OSVersion": self.os_version,
                "BuildVersion": self.build_version,
                "ProductName": self.product_name,
                "Model": self.model,
                "ModelName": self.model_name,
                "DeviceName": f"{self.model_name} {self.serial_number[-4:]}",
                **extra,
            }
        )

    def token_update(self, **extra: Any) -> SignedRequest:
        return self.checkin(
            {
                "MessageType": "TokenUpdate",
                "Topic": self.topic,
                "UDID": self.udid,
                "Token": self.push_token,
                "PushMagic": self.push_magic,
                "UnlockToken": b"unlock-" + self.udid.encode(),
                "AwaitingConfiguration": False,
                **extra,
            }
        )

    def check_out(self) -> SignedRequest:
        return self.checkin({"MessageType": "CheckOut", "Topic": self.topic, "UDID": self.udid})

    def idle(self) -> SignedRequest:
        return self.result("Idle")

    def result(self, status: str, command_uuid: str | None = None, **extra: Any) -> SignedRequest:
        message: dict[str, Any] = {"UDID": self.udid, "Status": status, **extra}
        if command_uuid is not None:
            message["CommandUUID"] = command_uuid
        return self._signed("/mdm/connect", message, CONNECT_TYPE)

    # Signing ---------------------------------------------------------------------------------

    def sign(self, body: bytes) -> str:
        der = sign_detached(
            body, self.certificate, self.key, signed_attributes=self.signed_attributes
        )
        return base64.b64encode(der).decode()

    def _signed(self, path: str, message: dict[str, Any], content_type: str) -> SignedRequest:
        body = plistlib.dumps(message)
        headers = {"Content-Type": content_type, "Mdm-Signature": self.sign(body)}
        return SignedRequest(path, body, headers)
