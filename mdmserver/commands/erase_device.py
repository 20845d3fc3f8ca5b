"""EraseDevice: wipe. Irreversible, so the Mac PIN (the Find My lock after erasing) is
required here even where Apple leaves it optional, and the CLI asks for confirmation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mdmserver.commands.base import CommandRule, Problem, TargetFacts
from mdmserver.commands.device_lock import mac_pin


def _check(payload: Mapping[str, Any], facts: TargetFacts) -> list[Problem]:
    # PreserveDataPlan, DisallowProximitySetup, ObliterationBehavior, ReturnToService:
    # their types, values and platforms are Apple's schema's to judge.
    return mac_pin(payload, facts, "erase a Mac")


RULE = CommandRule("EraseDevice", check=_check)
