"""Desired state: which InstallProfile / RemoveProfile commands bring a device in line.

Pure: the caller says what should be installed, what is known about the device, and which
identifiers the server manages; the plan is the smallest set of commands. Running it again
before anything changed plans nothing: a pending command counts as done, and a command the
device refused is not retried until the profile changes (or an admin asks for a retry), so a
broken profile cannot loop.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Known:
    """What the server knows of one managed profile on one enrollment."""

    installed_uuid: str | None = None
    action: str | None = None  # the last command sent: install or remove
    sent_uuid: str | None = None
    status: str = "pending"
    queued: bool = False  # that command still waits in the device's queue


@dataclass(frozen=True, slots=True)
class Plan:
    install: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.install or self.remove)


def plan(
    desired: Mapping[str, str],
    known: Mapping[str, Known],
    managed: Collection[str],
    protected: Collection[str] = (),
) -> Plan:
    """`desired` maps identifier to the PayloadUUID of its current revision; `protected`
    identifiers (the enrollment profile) are never touched."""
    result = Plan()
    for identifier, payload_uuid in sorted(desired.items()):
        if identifier in protected:
            continue
        state = known.get(identifier, Known())
        removing = state.queued and state.action == "remove"
        if state.installed_uuid == payload_uuid and not removing:
            continue
        same = state.action == "install" and state.sent_uuid == payload_uuid
        if same and (state.queued or state.status == "failed"):
            continue  # already on its way, or refused: not again until it changes
        result.install.append(identifier)
    for identifier, state in sorted(known.items()):
        if identifier in desired or identifier not in managed or identifier in protected:
            continue
        installing = state.queued and state.action == "install"
        if state.installed_uuid is None and not installing:
            continue
        if state.action == "remove" and (state.queued or state.status == "failed"):
            continue
        result.remove.append(identifier)
    return result
