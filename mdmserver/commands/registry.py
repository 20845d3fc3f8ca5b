"""Which rule applies to a RequestType: its own module, else the schema alone."""

from __future__ import annotations

from mdmserver.commands import clear_passcode, device_lock, erase_device, install_profile
from mdmserver.commands.base import CommandRule
from mdmserver.commands.lost_mode import RULES as LOST_MODE

# Commands the catalog lists by name with no rules beyond Apple's schema.
SCHEMA_ONLY = (
    "RestartDevice",
    "ShutDownDevice",
    "DeviceInformation",
    "SecurityInfo",
    "ProfileList",
    "RemoveProfile",
    "CertificateList",
    "InstalledApplicationList",
    "ManagedApplicationList",
    "InstallApplication",
    "RemoveApplication",
    "Settings",
    "AvailableOSUpdates",
    "ScheduleOSUpdate",
)

RULES: dict[str, CommandRule] = {
    rule.request_type: rule
    for rule in (
        device_lock.RULE,
        erase_device.RULE,
        clear_passcode.RULE,
        install_profile.RULE,
        *LOST_MODE,
        *(CommandRule(name) for name in SCHEMA_ONLY),
    )
}


def rule_for(request_type: str) -> CommandRule:
    """The declared rule, or the generic one (schema validation only)."""
    return RULES.get(request_type) or CommandRule(request_type)
