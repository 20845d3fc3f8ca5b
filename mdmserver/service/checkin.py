"""What the server does with each check-in MessageType: one small handler per type."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from mdmserver.protocol import checkin as msg
from mdmserver.protocol.plist import dumps
from mdmserver.service.base import EMPTY, Reply
from mdmserver.service.errors import BadDeviceRequest, Declined, NotSupported, UnknownDevice
from mdmserver.service.hooks import EnrolledEvent, Hooks
from mdmserver.storage.base import DeviceRecord, TokenRecord, UnknownEnrollment
from mdmserver.storage.ports import CheckinPort


class CheckinHandlers:
    def __init__(
        self,
        storage: CheckinPort,
        push_topics: Collection[str],
        *,
        allow_user_auth: bool = False,
        hooks: Hooks | None = None,
    ) -> None:
        self.storage = storage
        self.hooks = hooks or Hooks()
        self.push_topics = frozenset(push_topics)
        self.allow_user_auth = allow_user_auth
        self._handlers: dict[type, Callable[[Any], Reply]] = {
            msg.Authenticate: self.authenticate,
            msg.TokenUpdate: self.token_update,
            msg.CheckOut: self.check_out,
            msg.UserAuthenticate: self.user_authenticate,
            msg.SetBootstrapToken: self.set_bootstrap_token,
            msg.GetBootstrapToken: self.get_bootstrap_token,
            msg.DeclarativeManagement: self.declarative_management,
            msg.GetToken: self.get_token,
        }

    def handle(self, message: msg.CheckinMessage) -> Reply:
        try:
            return self._handlers[type(message)](message)
        except UnknownEnrollment as exc:
            raise UnknownDevice(str(exc)) from None

    def _check_topic(self, topic: str) -> None:
        if topic not in self.push_topics:
            # A topic we cannot push to would leave the device unreachable: refuse it up front.
            raise BadDeviceRequest(f"topic {topic!r} is not one of this server's push topics")

    def authenticate(self, m: msg.Authenticate) -> Reply:
        self._check_topic(m.topic)
        self.storage.authenticate(
            DeviceRecord(
                device_id=m.identity.device_id,
                user_enrollment=m.identity.type.value.startswith("user_enrollment"),
                topic=m.topic,
                serial_number=m.serial_number,
                model=m.model,
                model_name=m.model_name,
                product_name=m.product_name,
                os_version=m.os_version,
                build_version=m.build_version,
                device_name=m.device_name,
                imei=m.imei,
                meid=m.meid,
            ),
            m.identity,
        )
        return EMPTY

    def token_update(self, m: msg.TokenUpdate) -> Reply:
        self._check_topic(m.topic)
        activated = self.storage.token_update(
            TokenRecord(
                identity=m.identity,
                topic=m.topic,
                push_token_hex=m.token.hex(),
                push_magic=m.push_magic,
                unlock_token=m.unlock_token,
                awaiting_configuration=m.awaiting_configuration,
                user_short_name=m.user_short_name,
                user_long_name=m.user_long_name,
            )
        )
        if activated:
            self.hooks.enrolled(EnrolledEvent(m.identity))
        return EMPTY

    def check_out(self, m: msg.CheckOut) -> Reply:
        self.storage.check_out(m.identity)
        return EMPTY

    def user_authenticate(self, m: msg.UserAuthenticate) -> Reply:
        if not self.allow_user_auth:
            raise Declined("this server does not authenticate users (UserAuthenticate declined)")
        # A zero-length DigestChallenge tells the device no AuthToken is needed for the user.
        return Reply(dumps({"DigestChallenge": ""}))

    def set_bootstrap_token(self, m: msg.SetBootstrapToken) -> Reply:
        self.storage.set_bootstrap_token(m.identity.device_id, m.bootstrap_token or None)
        return EMPTY

    def get_bootstrap_token(self, m: msg.GetBootstrapToken) -> Reply:
        token = self.storage.get_bootstrap_token(m.identity.device_id)
        return Reply(dumps({"BootstrapToken": token})) if token else EMPTY

    def declarative_management(self, m: msg.DeclarativeManagement) -> Reply:
        handler = self.hooks.declarative
        if handler is None:
            raise NotSupported("DeclarativeManagement is not served by this server")
        reply: Reply = handler(m)
        return reply

    def get_token(self, m: msg.GetToken) -> Reply:
        raise NotSupported(f"GetToken ({m.token_service_type}) is not supported by this server yet")
