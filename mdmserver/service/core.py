"""The core MDM service: check-in handlers plus the command loop, with no identity checks.

Identity checks live in :mod:`mdmserver.service.certauth`, which wraps this core.
"""

from __future__ import annotations

from mdmserver.logs import get_logger
from mdmserver.protocol.checkin import CheckinMessage
from mdmserver.protocol.results import CommandResult
from mdmserver.service.base import Reply
from mdmserver.service.checkin import CheckinHandlers
from mdmserver.service.connect import CommandLoop
from mdmserver.service.context import DeviceRequest

log = get_logger("service")


class CoreService:
    def __init__(self, checkin: CheckinHandlers, loop: CommandLoop) -> None:
        self.checkin_handlers = checkin
        self.loop = loop

    def checkin(self, request: DeviceRequest, message: CheckinMessage) -> Reply:
        reply = self.checkin_handlers.handle(message)
        log.info(
            "checkin",
            extra={
                "fields": {
                    "message_type": message.MESSAGE_TYPE,
                    "enrollment_id": message.identity.id,
                    "cert": request.fingerprint[:16],
                }
            },
        )
        return reply

    def connect(self, request: DeviceRequest, result: CommandResult) -> Reply:
        return self.loop.handle(request, result)
