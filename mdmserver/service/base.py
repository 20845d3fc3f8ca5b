"""The service interface: one call per endpoint, so middlewares can wrap the core."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mdmserver.protocol.checkin import CheckinMessage
from mdmserver.protocol.results import CommandResult
from mdmserver.service.context import DeviceRequest


@dataclass(frozen=True, slots=True)
class Reply:
    """What goes back to the device: a plist body (possibly empty) with a 200."""

    body: bytes = b""
    content_type: str = "application/xml"


EMPTY = Reply()


class MDMService(Protocol):
    def checkin(self, request: DeviceRequest, message: CheckinMessage) -> Reply: ...
    def connect(self, request: DeviceRequest, result: CommandResult) -> Reply: ...
