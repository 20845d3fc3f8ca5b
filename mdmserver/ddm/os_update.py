"""OS-update enforcement through DDM, as one operation.

``enforce`` stores a ``softwareupdate.enforcement.specific`` configuration (TargetOSVersion,
TargetLocalDateTime) with an activation, assigns it to all devices or a tag (which syncs
them), and adds the compliance rule "on version >= V after the deadline" to the policy.
``progress`` reads each device's answer from the status channel: its OS version, and
softwareupdate.install-state, pending-version and failure-reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mdmserver.catalog.schema import parse_version
from mdmserver.compliance.policy import parse_deadline
from mdmserver.compliance.service import PolicySource
from mdmserver.ddm.service import DDMService, parse_target
from mdmserver.storage.sql.ddm_store import ALL

ENFORCEMENT = "com.apple.configuration.softwareupdate.enforcement.specific"
ACTIVATION = "com.apple.activation.simple"
PREFIX = "com.mdmserver.os-update."
_SLUG = re.compile(r"[^A-Za-z0-9.-]+")


@dataclass(frozen=True)
class Enforced:
    identifier: str
    activation: str
    target: str
    version: str
    by: datetime
    synced: int


def identifiers(target: str) -> tuple[str, str]:
    """The configuration and activation of a target's enforcement (one per target)."""
    slug = "all" if target == ALL else "tag-" + _SLUG.sub("-", target.removeprefix("tag:"))
    return PREFIX + slug[:40], PREFIX + slug[:40] + ".activation"


def enforce(
    service: DDMService,
    policies: PolicySource | None,
    version: str,
    by: str | datetime,
    *,
    tag: str | None = None,
    platform: str | None = None,
    build: str | None = None,
    actor: str = "os-update",
) -> Enforced:
    try:
        parse_version(version)
    except ValueError:
        raise ValueError(f"--version: not an OS version: {version!r}") from None
    deadline = parse_deadline(by, "--by")
    target = parse_target(f"tag:{tag}") if tag else ALL
    identifier, activation = identifiers(target)
    payload: dict[str, Any] = {
        "TargetOSVersion": version,
        # The device's local time: the deadline as written, without its zone.
        "TargetLocalDateTime": deadline.replace(tzinfo=None).isoformat(timespec="seconds"),
    }
    if build:
        payload["TargetBuildVersion"] = build
    saved = service.put(identifier, {"Type": ENFORCEMENT, "Payload": payload})
    service.put(
        activation, {"Type": ACTIVATION, "Payload": {"StandardConfigurations": [identifier]}}
    )
    _, synced = service.assign(activation, target)
    if policies is not None:
        current = policies.current().to_dict()
        kept = [
            r
            for r in current.get("os_updates", [])
            if not (r["version"] == version and r.get("platform") == platform)
        ]
        rule = {"version": version, "by": deadline.isoformat(), "platform": platform}
        policies.set({**current, "os_updates": [*kept, rule]}, actor)
    return Enforced(identifier, activation, target, version, deadline, synced + saved.synced)


def progress(service: DDMService, target: str = ALL) -> dict[str, Any]:
    """Where each device the enforcement of ``target`` reaches stands."""
    identifier, _ = identifiers(target)
    row = service.store.get(identifier)
    if row is None:
        raise LookupError(f"no OS update enforced for {target!r}")
    version = row.payload["TargetOSVersion"]
    devices = []
    for enrollment_id in service.store.active_channels([target]):
        ctx = service.store.channel(enrollment_id)
        if ctx is None or ctx.user_channel:
            continue
        items = {k: v for k, (v, _) in service.store.status_items(enrollment_id).items()}
        running = items.get("device.operating-system.version") or ctx.os_version
        reason = service.unsupported_on(ctx).get(identifier)
        devices.append(
            {
                "device_id": ctx.device_id,
                "os_version": running,
                "state": "not_supported" if reason else _state(running, version, items),
                "reason": reason,
                "install_state": items.get("softwareupdate.install-state"),
                "pending_version": items.get("softwareupdate.pending-version"),
                "failure_reason": items.get("softwareupdate.failure-reason"),
            }
        )
    return {
        "identifier": identifier,
        "target": target,
        "version": version,
        "local_deadline": row.payload["TargetLocalDateTime"],
        "devices": devices,
    }


def _state(running: Any, version: str, items: dict[str, Any]) -> str:
    try:
        if parse_version(str(running)) >= parse_version(version):
            return "updated"
    except ValueError:
        pass
    install = items.get("softwareupdate.install-state")
    return install if isinstance(install, str) and install != "none" else "pending"
