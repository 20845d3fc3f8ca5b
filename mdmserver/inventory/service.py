"""Inventory from hooks and on a schedule: ask enrolled devices what they are, store the
answers, and re-judge compliance in the same request.

- on enrollment (``hooks.on_enrolled``): queue DeviceInformation (every query Apple documents
  for the platform), SecurityInfo, ProfileList, InstalledApplicationList, CertificateList and
  ManagedApplicationList; the device picks them up in the session it is starting;
- on each answer (dispatched as the command modules declare, e.g. commands/profile_list.py):
  parse defensively, store facts + raw answer + history, evaluate compliance, so a trust query
  right after the device's POST sees the new state;
- ``refresh_due_inventory(now)``: for the scheduler (issue #4's worker, or the CLI
  ``mdmserver inventory refresh-due``): re-queue devices last asked more than
  ``inventory_interval_hours`` ago, and request a push for them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from mdmserver.catalog.platforms import platform_of
from mdmserver.compliance.service import ComplianceService
from mdmserver.inventory.parse import parse
from mdmserver.inventory.queries import INVENTORY_COMMANDS, inventory_commands
from mdmserver.logs import get_logger
from mdmserver.protocol.results import Status
from mdmserver.service.hooks import EnrolledEvent, Hooks, ResultEvent
from mdmserver.storage.ports import InventoryPort, QueuePort

log = get_logger("inventory")

READ_COMMANDS = (*INVENTORY_COMMANDS,)
MIN_REFRESH_GAP = timedelta(hours=1)  # remediation never asks the same device more often
Push = Callable[[list[str]], object]


class InventoryService:
    def __init__(
        self,
        store: InventoryPort,
        storage: QueuePort,
        compliance: ComplianceService,
        *,
        interval_hours: int = 24,
        on_enroll: bool = True,
        push: Push | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.compliance = compliance
        self.interval = timedelta(hours=interval_hours)
        self.on_enroll = on_enroll
        self.push = push

    def register(self, hooks: Hooks) -> None:
        if self.on_enroll:  # off: inventory comes only from refresh_due_inventory
            hooks.on_enrolled(self.on_enrolled)
        hooks.readers.inventory = self  # the READ_COMMANDS' modules name on_result

    # Hooks -------------------------------------------------------------------------------------

    def on_enrolled(self, event: EnrolledEvent) -> None:
        if event.identity.is_user_channel:
            return
        self.queue_inventory(event.identity.device_id, _now())

    def on_result(self, event: ResultEvent) -> None:
        identity = event.identity
        if identity.is_user_channel or event.result.status is not Status.ACKNOWLEDGED:
            return
        now = _now()
        facts = parse(event.request_type, event.result.raw)
        platform = None
        if event.request_type == "DeviceInformation":
            platform = platform_of(facts.get("product_name"), facts.get("model"))
        changes = self.store.record_answer(
            identity.device_id,
            event.request_type,
            event.result.command_uuid or "",
            event.body,
            facts,
            platform=platform,
            now=now,
        )
        log.info(
            "inventory_answer",
            extra={
                "fields": {
                    "device_id": identity.device_id,
                    "request_type": event.request_type,
                    "changed": [c.field for c in changes],
                }
            },
        )
        self.compliance.evaluate(identity.device_id, now, in_request=True)

    # Scheduling --------------------------------------------------------------------------------

    def queue_inventory(self, device_id: str, now: datetime) -> int:
        context = self.store.context(device_id)
        facts = self.store.facts(device_id) or {}
        platform = facts.get("platform")
        os_version = facts.get("os_version")
        user_enrollment = False
        if context is not None:
            platform = platform or platform_of(context.product_name, context.model)
            os_version = os_version or context.os_version
            user_enrollment = context.user_enrollment
        commands = inventory_commands(platform, os_version, user_enrollment=user_enrollment)
        for command in commands:
            self.storage.enqueue(command, [device_id], created_by="inventory")
        self.store.mark_requested([device_id], now)
        log.info(
            "inventory_queued", extra={"fields": {"device_id": device_id, "platform": platform}}
        )
        return len(commands)

    def refresh(self, device_id: str, now: datetime) -> bool:
        """Queue an inventory unless one was asked for within the last hour."""
        last = self.store.requested_at(device_id)
        if last is not None and now - last < MIN_REFRESH_GAP:
            return False
        self.queue_inventory(device_id, now)
        return True

    def refresh_due_inventory(self, now: datetime | None = None, limit: int = 1000) -> int:
        """Re-queue inventory for enrolled devices not asked within the interval."""
        now = now or _now()
        due = self.store.due_for_refresh(now - self.interval, limit)
        for device_id in due:
            try:
                self.queue_inventory(device_id, now)
            except Exception:
                log.exception(
                    "inventory_refresh_failed", extra={"fields": {"device_id": device_id}}
                )
        if due and self.push is not None:
            self.push(due)
        log.info("inventory_refresh_due", extra={"fields": {"queued": len(due)}})
        return len(due)


def _now() -> datetime:
    return datetime.now(UTC)
