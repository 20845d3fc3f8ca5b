"""DeviceLock: lock the screen now. A Mac is locked with a 6-digit PIN it asks for to unlock
(Apple's schema types the PIN as a plain string; the 6 digits are the Mac's rule)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mdmserver.commands.base import CommandRule, Problem, TargetFacts

SIX_DIGITS = re.compile(r"[0-9]{6}")


def mac_pin(payload: Mapping[str, Any], facts: TargetFacts, action: str) -> list[Problem]:
    """The PIN rule DeviceLock and EraseDevice share on macOS."""
    if facts.platform != "macOS":
        return []
    pin = payload.get("PIN")
    if pin is None:
        return [Problem("command.PIN", f"macOS requires a 6-digit PIN to {action}")]
    if not isinstance(pin, str) or not SIX_DIGITS.fullmatch(pin):
        return [Problem("command.PIN", 'must be exactly 6 digits (a string such as "123456")')]
    return []


def _check(payload: Mapping[str, Any], facts: TargetFacts) -> list[Problem]:
    return mac_pin(payload, facts, "lock a Mac")


RULE = CommandRule("DeviceLock", check=_check)
