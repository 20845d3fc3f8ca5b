"""Building the command plist a device receives in answer to a poll."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mdmserver.protocol.plist import dumps

__all__ = ["SECURITY_COMMANDS", "Command", "new_command"]

# Commands that protect a lost or stolen device. A new enrollment of the device (or its
# CheckOut) cancels what was queued for the old one, except these: removing the MDM profile or
# enrolling again must not be a way to escape a wipe or a lock.
SECURITY_COMMANDS = frozenset(
    {
        "DeviceLock",
        "EraseDevice",
        "EnableLostMode",
        "DisableLostMode",
        "PlayLostModeSound",
        "DeviceLocation",
    }
)


@dataclass(frozen=True, slots=True)
class Command:
    """One queued command; `payload` holds the Command keys other than RequestType.

    Misuse raises ValueError rather than ProtocolError: it is a server-side
    mistake, not something a device sent.
    """

    command_uuid: str
    request_type: str
    payload: Mapping[str, Any]

    def __post_init__(self) -> None:
        if not isinstance(self.command_uuid, str) or not self.command_uuid:
            raise ValueError("CommandUUID must be a non-empty string")
        if not isinstance(self.request_type, str) or not self.request_type:
            raise ValueError("RequestType must be a non-empty string")
        if not isinstance(self.payload, Mapping):
            raise ValueError(f"{self.request_type} payload must be a mapping")
        if "RequestType" in self.payload:
            raise ValueError(
                f"{self.request_type} payload must not contain RequestType; pass it separately"
            )
        # A private copy, so later changes to the caller's dict cannot alter a queued command.
        object.__setattr__(self, "payload", dict(self.payload))

    def to_plist(self) -> bytes:
        """The XML plist Apple expects: {"CommandUUID": ..., "Command": {"RequestType": ...}}."""
        body = {
            "CommandUUID": self.command_uuid,
            "Command": {"RequestType": self.request_type, **self.payload},
        }
        try:
            return dumps(body)
        except (TypeError, OverflowError) as exc:
            raise ValueError(
                f"{self.request_type} payload cannot be written as a plist: {exc}"
            ) from exc


def new_command(
    request_type: str,
    payload: Mapping[str, Any] | None = None,
    command_uuid: str | None = None,
) -> Command:
    """A Command with a fresh upper-case UUID unless one is given."""
    return Command(
        command_uuid=command_uuid if command_uuid is not None else str(uuid.uuid4()).upper(),
        request_type=request_type,
        payload={} if payload is None else payload,
    )
