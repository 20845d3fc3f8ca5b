"""Installing a newly assigned required app on every device it targets at once, instead of
one device at a time as each one's next ``ManagedApplicationList`` arrives.

One query finds the devices (assigned, active, licensed when the app needs it, without a state
for the app yet); they are grouped by platform, because the command differs (``Options`` is
an iOS key); each group's command is checked against Apple's schema once and queued to the
whole group as one command UUID (PostgreSQL fans it out in one statement); the devices' states
become ``pending`` in batches. From then on each device's own reconciliation takes over: the
queued command counts as in flight, and its answer moves the state on (reconcile.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from mdmserver.apps.declarative import ddm_channel_reason
from mdmserver.apps.desired import install_command
from mdmserver.catalog.platforms import platform_of
from mdmserver.catalog.validate import validate_command
from mdmserver.logs import get_logger
from mdmserver.protocol.commands import new_command
from mdmserver.storage.base import Storage
from mdmserver.storage.sql.app_store import AppStore

log = get_logger("apps.rollout")


@dataclass
class Rollout:
    queued: dict[str, int] = field(default_factory=dict)  # platform -> devices
    refused: dict[str, list[str]] = field(default_factory=dict)  # platform -> schema problems

    @property
    def total(self) -> int:
        return sum(self.queued.values())


def roll_out(
    store: AppStore, storage: Storage, server_url: str, app_id: str, *, declared: bool = False
) -> Rollout:
    """Queue the install of one required app to every device that should get it now by
    command. ``declared``: the app has its ``app.managed`` declaration, so the devices that take
    it get the app through DDM and are left out (an InstallApplication would fail for them).
    An assignment with its own management flags or configuration is left to each device's
    reconciliation, which builds the command with them."""
    app = store.get(app_id)
    details = store.assignment_details(app_id)
    if app is None or not any(a.behaviour == "required" for a in details):
        return Rollout()
    if any(a.management_flags is not None or a.configuration is not None for a in details):
        return Rollout(refused={"all": ["an assignment carries flags or a configuration"]})
    groups: dict[str | None, list[str]] = defaultdict(list)
    targets = store.rollout_targets(app.id, app.adam_id)
    for device_id, product_name, model, os_version, ddm_on in targets:
        kind = platform_of(product_name, model)
        if ddm_channel_reason(declared, ddm_on, kind, os_version) is None:
            continue  # its app.managed declaration brings it
        groups[kind].append(device_id)
    manifest_url = app.manifest_url or (
        f"{server_url.rstrip('/')}/mdm/apps/{app.id}/manifest" if app.manifest else None
    )
    out = Rollout()
    for platform, device_ids in sorted(groups.items(), key=lambda g: str(g[0])):
        request_type, payload = install_command(
            app.kind,
            adam_id=app.adam_id,
            manifest_url=manifest_url,
            manifest=app.manifest if app.kind == "macos_pkg" and not app.manifest_url else None,
            platform=platform,
        )
        problems = [
            str(p)
            for p in validate_command(request_type, payload, platform=platform)
            if p.severity == "error"
        ]
        if problems:  # left to each device's reconciliation, which records why
            out.refused[str(platform)] = problems
            continue
        command = new_command(request_type, payload)
        storage.enqueue(command, device_ids)
        store.start_installs(app.id, device_ids, command.command_uuid)
        out.queued[str(platform)] = len(device_ids)
    log.info("app_rolled_out", extra={"fields": {"app": app.id, "queued": out.queued}})
    return out
