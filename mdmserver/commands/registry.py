"""Which rule applies to a RequestType: its own module, else the schema alone; and which
features read its answer (the ``ANSWER`` its module declares)."""

from __future__ import annotations

from mdmserver.commands import (
    certificate_list,
    clear_passcode,
    device_information,
    device_lock,
    erase_device,
    install_application,
    install_profile,
    installed_application_list,
    managed_application_list,
    profile_list,
    remove_application,
    remove_profile,
    security_info,
    settings,
)
from mdmserver.commands.answers import AnswerRule
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


# The answers features read, by RequestType; any other answer is stored and read by no one.
ANSWERS: dict[str, AnswerRule] = {
    rule.request_type: rule
    for rule in (
        device_information.ANSWER,
        security_info.ANSWER,
        profile_list.ANSWER,
        certificate_list.ANSWER,
        installed_application_list.ANSWER,
        managed_application_list.ANSWER,
        install_profile.ANSWER,
        remove_profile.ANSWER,
        *install_application.ANSWERS,
        remove_application.ANSWER,
        settings.ANSWER,
    )
}
