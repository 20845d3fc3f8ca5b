"""ClearPasscode: needs the UnlockToken the device sent in its TokenUpdate. The server puts
it in the command; a caller never supplies (or sees) it. Built per device, so one target."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mdmserver.commands.base import CommandRule, Problem, Secrets, TargetFacts


def _check(_payload: Mapping[str, Any], facts: TargetFacts) -> list[Problem]:
    if not facts.has_unlock_token:
        return [
            Problem(
                "command.UnlockToken",
                "no UnlockToken is stored for this enrollment (the device never sent one in"
                " TokenUpdate), so its passcode cannot be cleared",
            )
        ]
    return []


def _build(payload: dict[str, Any], enrollment_ids: Sequence[str], secrets: Secrets) -> dict:
    token = secrets.unlock_token(enrollment_ids[0])
    return {**payload, "UnlockToken": token} if token is not None else payload


RULE = CommandRule(
    "ClearPasscode",
    check=_check,
    build=_build,
    single_target="ClearPasscode carries one device's own UnlockToken: send it to one device",
    server_keys=("UnlockToken",),
)
