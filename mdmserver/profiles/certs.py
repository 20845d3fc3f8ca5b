"""Keeping each device's identity certificate, to encrypt profiles to it.

cert_bindings holds only fingerprints; EncryptedPayloadContent needs the certificate itself.
This wrapper around the service records the certificate that signed an Authenticate or a
TokenUpdate (after the inner service accepted it, so refused requests store nothing). The
newest one seen is the one profiles are encrypted to; a renewed identity is picked up at the
device's next TokenUpdate.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization

from mdmserver.protocol.checkin import Authenticate, CheckinMessage, TokenUpdate
from mdmserver.protocol.results import CommandResult
from mdmserver.service.base import MDMService, Reply
from mdmserver.service.context import DeviceRequest
from mdmserver.storage.ports import ProfilePort


class CertificateRecorder:
    def __init__(self, inner: MDMService, store: ProfilePort) -> None:
        self.inner = inner
        self.store = store

    def checkin(self, request: DeviceRequest, message: CheckinMessage) -> Reply:
        reply = self.inner.checkin(request, message)
        if isinstance(message, Authenticate | TokenUpdate) and not message.identity.is_user_channel:
            der = request.certificate.public_bytes(serialization.Encoding.DER)
            self.store.remember_certificate(message.identity.device_id, request.fingerprint, der)
        return reply

    def connect(self, request: DeviceRequest, result: CommandResult) -> Reply:
        return self.inner.connect(request, result)
