"""Installing a newly assigned required app on every device it targets at once, instead of
one device at a time as each one's next ``ManagedApplicationList`` arrives.

One query finds the devices (assigned, active, licensed when the app needs it, without a state
for the app yet); they are grouped by platform, because the command differs (``Options`` is
an iOS key); each group's command is checked against Apple's schema once and queued to the
whole group as one command UUID (PostgreSQL fans it out in one statement); the devices' states
become ``pending`` in batches. From then on each device's own reconciliation takes over: the
queued command counts as in flight, and its answer moves the state on (reconcile.py).

It runs when an admin adds or replaces a required assignment (:class:`Rollouts`, the apps
service's ``on_assignments`` beside the DDM publish). A large fleet is a long write, so where
the job backend runs work in the background (the web process's in-process threads, or an
``mdmserver worker`` on RQ) the roll-out is a job (:func:`rollout_task`) and the admin's request
only schedules it; only a CLI without Redis, whose in-process jobs would end with the command,
runs it in the call. Each batch of devices is one command, queued, marked pending and pushed
before the next (progress is logged per batch).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol

from mdmserver.apps.declarative import configuration_id, ddm_channel_reason
from mdmserver.apps.desired import install_command
from mdmserver.catalog.platforms import platform_of
from mdmserver.catalog.validate import validate_command
from mdmserver.jobs.backend import APPS_QUEUE, BackendUnavailable, Job, JobBackend, backoff
from mdmserver.logs import get_logger
from mdmserver.protocol.commands import new_command
from mdmserver.service.wakes import WakingStorage
from mdmserver.storage.base import Storage
from mdmserver.storage.ports import AppPort, QueuePort
from mdmserver.storage.sql.app_store import AppStore
from mdmserver.storage.sql.ddm_store import DDMStore
from mdmserver.storage.sql.device_store import SQLStorage

log = get_logger("apps.rollout")

ROLLOUT_TASK = "apps.rollout"
ROLLOUT_QUEUE = APPS_QUEUE  # one of mdmserver.jobs.backend.QUEUES, which workers serve
BATCH = 5000  # devices per command: each batch is queued, marked and pushed before the next
_one_at_a_time = threading.Lock()  # two roll-outs in one process never race for a device


@dataclass
class Rollout:
    queued: dict[str, int] = field(default_factory=dict)  # platform -> devices
    refused: dict[str, list[str]] = field(default_factory=dict)  # platform -> schema problems

    @property
    def total(self) -> int:
        return sum(self.queued.values())


def roll_out(
    store: AppPort,
    storage: QueuePort,
    server_url: str,
    app_id: str,
    *,
    declared: bool = False,
    batch: int = BATCH,
) -> Rollout:
    """Queue the install of one required app to every device that should get it now by
    command. ``declared``: the app has its Required ``app.managed`` declaration, so the devices
    that take it get the app through DDM and are left out (an InstallApplication would fail for
    them). Only required assignments are rolled out: an available app is offered by its
    Optional declaration alone, never by command.
    An assignment with its own management flags or configuration is left to each device's
    reconciliation, which builds the command with them. ``storage``: the waking one, so
    each batch's devices are pushed as it is queued."""
    with _one_at_a_time:
        return _roll_out(store, storage, server_url, app_id, declared, batch)


def _roll_out(
    store: AppPort,
    storage: QueuePort,
    server_url: str,
    app_id: str,
    declared: bool,
    batch: int,
) -> Rollout:
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
        for start in range(0, len(device_ids), batch):
            chunk = device_ids[start : start + batch]
            command = new_command(request_type, payload)
            storage.enqueue(command, chunk)
            store.start_installs(app.id, chunk, command.command_uuid)
            out.queued[str(platform)] = out.queued.get(str(platform), 0) + len(chunk)
            if len(device_ids) > batch:
                fields = {"app": app.id, "platform": platform, "queued": out.queued[str(platform)],
                          "of": len(device_ids)}  # fmt: skip
                log.info("app_rollout_progress", extra={"fields": fields})
    log.info("app_rolled_out", extra={"fields": {"app": app.id, "queued": out.queued}})
    return out


@dataclass(frozen=True)
class RolloutOutcome:
    """What the admin is told: queued now (by platform), or scheduled as a job."""

    scheduled: bool
    backend: str | None = None
    queued: dict[str, int] | None = None
    refused: dict[str, list[str]] | None = None

    def as_json(self) -> dict[str, Any]:
        if self.scheduled:
            return {"scheduled": True, "backend": self.backend}
        queued = self.queued or {}
        return {
            "scheduled": False,
            "devices": sum(queued.values()),
            "queued": queued,
            "refused": self.refused or {},
        }


class _Declared(Protocol):
    def is_declared(self, app_id: str) -> bool: ...


class Rollouts:
    """The roll-out that follows a change of an app's assignments: a job where the backend
    runs one in the background (``background``), otherwise now with ``storage``."""

    def __init__(
        self,
        store: AppPort,
        storage: Storage,
        server_url: str,
        declarations: _Declared,
        background: JobBackend | None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.server_url = server_url
        self.declarations = declarations
        self.background = background

    def __call__(self, app_id: str) -> RolloutOutcome | None:
        """None when the app has no required assignment left (nothing to roll out)."""
        if not any(a.behaviour == "required" for a in self.store.assignment_details(app_id)):
            return None
        if self.background is not None:
            job = Job(ROLLOUT_TASK, (app_id,), queue=ROLLOUT_QUEUE, retry=backoff(5, 2))
            try:
                self.background.submit([job])
            except BackendUnavailable as exc:  # Redis down: do it now rather than not at all
                fields = {"app": app_id, "error": str(exc)[:300]}
                log.warning("app_rollout_not_scheduled", extra={"fields": fields})
            else:
                log.info("app_rollout_scheduled", extra={"fields": {"app": app_id}})
                return RolloutOutcome(scheduled=True, backend=self.background.name)
        done = roll_out(
            self.store,
            self.storage,
            self.server_url,
            app_id,
            declared=self.declarations.is_declared(app_id),
        )
        return RolloutOutcome(scheduled=False, queued=done.queued, refused=done.refused)


def rollout_task(ctx: Any, app_id: str) -> int:
    """Job task, context first as mdmserver.jobs.tasks expects: roll one app out from a
    worker (or the web process's job threads); the devices queued. Whether the app is
    declared for DDM is read now, after the publish that preceded the job."""
    engine = ctx.engine
    wake = getattr(ctx, "wake", None) or ctx.outbox.add
    storage = WakingStorage(SQLStorage(engine), wake)
    declared = DDMStore(engine).get(configuration_id(app_id)) is not None
    done = roll_out(AppStore(engine), storage, ctx.config.server_url, app_id, declared=declared)
    return done.total
