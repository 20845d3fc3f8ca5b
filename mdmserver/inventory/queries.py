"""The inventory commands to queue for a device: DeviceInformation asks for every query Apple
documents for the device's platform (from the schema index), so a new OS's queries appear
without a code change."""

from __future__ import annotations

from functools import cache

from mdmserver.catalog.schema import PLATFORMS, Platform, command_spec, parse_version
from mdmserver.protocol.commands import Command, new_command

INVENTORY_COMMANDS = (
    "DeviceInformation",
    "SecurityInfo",
    "ProfileList",
    "InstalledApplicationList",
    "CertificateList",
    "ManagedApplicationList",
)


@cache
def _query_specs() -> tuple[tuple[str, dict[Platform, str | None], frozenset[Platform]], ...]:
    spec = command_spec("DeviceInformation")
    item = spec.key("Queries") if spec is not None else None
    if item is None or item.item is None:
        return ()
    specs = []
    for key in item.item.subkeys:
        introduced = {p: key.os[p].introduced for p in PLATFORMS}
        forbidden = frozenset(p for p in PLATFORMS if key.os[p].userenrollment == "forbidden")
        specs.append((key.name, introduced, forbidden))
    return tuple(specs)


def device_queries(
    platform: Platform | None, os_version: str | None = None, *, user_enrollment: bool = False
) -> list[str]:
    """Query names for one platform (every platform's when unknown), newest-OS filtered."""
    running = _version(os_version)
    names = []
    for name, introduced, forbidden in _query_specs():
        platforms = [platform] if platform is not None else list(PLATFORMS)
        usable = False
        for p in platforms:
            since = introduced[p]
            if since is None or (user_enrollment and p in forbidden):
                continue
            if running is None or platform is None or running >= (_version(since) or (0, 0, 0)):
                usable = True
        if usable:
            names.append(name)
    return names


def inventory_commands(
    platform: Platform | None, os_version: str | None = None, *, user_enrollment: bool = False
) -> list[Command]:
    queries = device_queries(platform, os_version, user_enrollment=user_enrollment)
    commands = [new_command("DeviceInformation", {"Queries": queries})]
    commands += [new_command(request_type) for request_type in INVENTORY_COMMANDS[1:]]
    return commands


def _version(text: str | None) -> tuple[int, int, int] | None:
    if not text:
        return None
    try:
        return parse_version(text)
    except ValueError:
        return None
