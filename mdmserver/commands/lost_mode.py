"""Lost mode: EnableLostMode, DisableLostMode, DeviceLocation, PlayLostModeSound.

Apple allows them on supervised iOS only. Supervision is unknown until inventory reports it
(issue #7): an unknown device is given the benefit of the doubt and the answer says so
(the generic supervision warning in prepare.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mdmserver.commands.base import CommandRule, Problem, TargetFacts


def _enable(payload: Mapping[str, Any], _facts: TargetFacts) -> list[Problem]:
    if not payload.get("Message") and not payload.get("PhoneNumber"):
        return [
            Problem("command.Message", "EnableLostMode needs a Message or a PhoneNumber to show")
        ]
    return []


RULES = (
    CommandRule("EnableLostMode", check=_enable),
    CommandRule("DisableLostMode"),
    CommandRule("DeviceLocation"),
    CommandRule("PlayLostModeSound"),
)
