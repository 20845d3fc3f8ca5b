"""Command results a device sends to the connect endpoint.

These common keys (Status, CommandUUID, ErrorChain, the user-channel names) are
not in Apple's YAML, which documents only each command's own response keys;
those stay in `raw` for whoever handles that command.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mdmserver.bounds import COMMAND_UUID, BoundError
from mdmserver.protocol.enrollment_id import EnrollmentIdentity, identity_from
from mdmserver.protocol.errors import ProtocolError
from mdmserver.protocol.plist import DEFAULT_MAX_BYTES, loads, type_name, typed_value

__all__ = ["CommandResult", "ErrorChainItem", "Status", "parse_result", "result_from"]

_WHERE = "command result"


class Status(StrEnum):
    """What the device did with the last command, or Idle when it reports none."""

    IDLE = "Idle"
    ACKNOWLEDGED = "Acknowledged"
    ERROR = "Error"
    COMMAND_FORMAT_ERROR = "CommandFormatError"
    NOT_NOW = "NotNow"


@dataclass(frozen=True, slots=True)
class ErrorChainItem:
    """One link of the device's ErrorChain; every key is optional in practice."""

    code: int | None
    domain: str | None
    localized_description: str | None
    us_english_description: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandResult:
    """A device's report on a command; `command_uuid` is None only for Idle."""

    identity: EnrollmentIdentity
    status: Status
    command_uuid: str | None
    error_chain: tuple[ErrorChainItem, ...] = ()
    not_on_console: bool | None = None
    user_short_name: str | None = None
    user_long_name: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def parse_result(body: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> CommandResult:
    """Parse a connect-endpoint body into a CommandResult."""
    return result_from(loads(body, max_bytes=max_bytes))


def result_from(message: Mapping[str, Any]) -> CommandResult:
    """Type an already-parsed result dictionary."""
    status_text = typed_value(message, "Status", str, where=_WHERE, required=True)
    try:
        status = Status(status_text)
    except ValueError:
        raise ProtocolError(f"{_WHERE}: unknown Status {status_text!r}") from None
    # Idle reports no command, so any CommandUUID beside it refers to nothing.
    command_uuid = typed_value(
        message, "CommandUUID", str, where=_WHERE, required=status is not Status.IDLE
    )
    if status is Status.IDLE:
        command_uuid = None
    else:
        try:
            COMMAND_UUID.check(command_uuid, f"{_WHERE}: key 'CommandUUID'")
        except BoundError as exc:
            raise ProtocolError(str(exc)) from None
    return CommandResult(
        identity=identity_from(message, where=_WHERE),
        status=status,
        command_uuid=command_uuid,
        error_chain=_error_chain(message),
        not_on_console=typed_value(message, "NotOnConsole", bool, where=_WHERE),
        user_short_name=typed_value(message, "UserShortName", str, where=_WHERE),
        user_long_name=typed_value(message, "UserLongName", str, where=_WHERE),
        raw=message if isinstance(message, dict) else dict(message),
    )


def _error_chain(message: Mapping[str, Any]) -> tuple[ErrorChainItem, ...]:
    chain = typed_value(message, "ErrorChain", list, where=_WHERE)
    if chain is None:
        return ()
    items = []
    for index, entry in enumerate(chain):
        where = f"{_WHERE}: ErrorChain[{index}]"
        if not isinstance(entry, dict):
            raise ProtocolError(f"{where} must be dictionary, got {type_name(type(entry))}")
        items.append(
            ErrorChainItem(
                code=typed_value(entry, "ErrorCode", int, where=where),
                domain=typed_value(entry, "ErrorDomain", str, where=where),
                localized_description=typed_value(entry, "LocalizedDescription", str, where=where),
                us_english_description=typed_value(entry, "USEnglishDescription", str, where=where),
            )
        )
    return tuple(items)
