"""The device service stack on the in-memory ports: no engine, no Flask, no HTTP.

What the HTTP layer would have done (verify the CMS signature, chain the certificate to the
CA, parse the plist) is done here with the real parsers and a real certificate; the stack is
the one ``create_app`` assembles for the device endpoints: CertAuth around the core (check-in
handlers and the command loop over the queue step), on :class:`MemoryStorage`.
"""

from __future__ import annotations

import plistlib
from dataclasses import dataclass, field
from typing import Any

from mdmserver.crypto.ca import fingerprint_sha256
from mdmserver.protocol.checkin import checkin_from
from mdmserver.protocol.results import result_from
from mdmserver.service.base import Reply
from mdmserver.service.certauth import CertAuth
from mdmserver.service.checkin import CheckinHandlers
from mdmserver.service.connect import CommandLoop
from mdmserver.service.context import DeviceRequest
from mdmserver.service.core import CoreService
from mdmserver.service.hooks import Hooks
from mdmserver.service.next_command import queued_command
from mdmserver.service.reenroll import ReenrollRule
from mdmserver.storage.memory import MemoryStorage
from mdmserver.testing.pki import TEST_TOPIC, Pki

PUSH_TOKEN = bytes(range(32))


@dataclass
class Device:
    """A device as the service sees it: its UDID and the identity certificate it signs with."""

    udid: str
    request: DeviceRequest

    def sends(self, message: dict[str, Any]) -> DeviceRequest:
        body = plistlib.dumps({"UDID": self.udid, **message})
        return DeviceRequest(
            body=body,
            certificate=self.request.certificate,
            fingerprint=self.request.fingerprint,
            not_after=self.request.not_after,
        )


@dataclass
class Stack:
    storage: MemoryStorage
    service: CertAuth
    hooks: Hooks
    pki: Pki
    enrolled: list[str] = field(default_factory=list)

    def device(self, udid: str) -> Device:
        cert, _key = self.pki.identity(udid, key_type="ec")
        request = DeviceRequest(
            body=b"",
            certificate=cert,
            fingerprint=fingerprint_sha256(cert),
            not_after=cert.not_valid_after_utc,
        )
        return Device(udid, request)

    def checkin(self, device: Device, message_type: str, **keys: Any) -> Reply:
        message = {"MessageType": message_type, "Topic": TEST_TOPIC, **keys}
        request = device.sends(message)
        return self.service.checkin(request, checkin_from(plistlib.loads(request.body)))

    def connect(self, device: Device, status: str, command_uuid: str | None = None) -> Reply:
        message: dict[str, Any] = {"Status": status}
        if command_uuid is not None:
            message["CommandUUID"] = command_uuid
        request = device.sends(message)
        return self.service.connect(request, result_from(plistlib.loads(request.body)))

    def enroll(self, device: Device) -> None:
        self.checkin(device, "Authenticate", SerialNumber="SERIAL-" + device.udid)
        self.checkin(device, "TokenUpdate", Token=PUSH_TOKEN, PushMagic="MAGIC")


def command_of(reply: Reply) -> dict[str, Any] | None:
    """The command a reply carries, or None for an empty reply (nothing to do)."""
    return plistlib.loads(reply.body) if reply.body else None


def build_stack(device_ca: Pki) -> Stack:
    """CertAuth around the core (check-in handlers, the queue step) on MemoryStorage."""
    storage = MemoryStorage()
    hooks = Hooks()
    core = CoreService(
        CheckinHandlers(storage, [TEST_TOPIC], hooks=hooks),
        CommandLoop(storage, [queued_command(storage)], hooks),
    )
    service = CertAuth(core, storage, reenroll=ReenrollRule(storage))
    return Stack(storage, service, hooks, device_ca)
