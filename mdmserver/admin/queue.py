"""A device's pending commands, on all its channels (device and user), and clearing them."""

from __future__ import annotations

from mdmserver.admin.audit import Audit
from mdmserver.admin.errors import NotFound, unambiguous
from mdmserver.storage.base import QueueItem
from mdmserver.storage.ports import InventoryQueryPort, QueuePort


class Queues:
    def __init__(self, storage: QueuePort, inventory: InventoryQueryPort, audit: Audit) -> None:
        self.storage = storage
        self.inventory = inventory
        self.audit = audit

    def _device_id(self, ident: str) -> str:
        device = unambiguous(lambda: self.inventory.find_device(ident))
        if device is None:
            raise NotFound(f"unknown device {ident!r} (no device has this UDID or serial number)")
        return device.id

    def show(self, ident: str, *, include_done: bool = False) -> tuple[str, list[QueueItem]]:
        device_id = self._device_id(ident)
        items: list[QueueItem] = []
        for enrollment_id in self.inventory.channels(device_id):
            items += self.storage.queue(enrollment_id, include_done=include_done)
        return device_id, items

    def clear(self, ident: str, *, actor: str) -> tuple[str, int]:
        """Cancel everything still pending; answered commands keep their results."""
        with self.audit.record(actor, "queue.clear", [ident]) as entry:
            device_id = self._device_id(ident)
            entry.targets = [device_id]
            cleared = sum(
                self.storage.clear_queue(enrollment_id)
                for enrollment_id in self.inventory.channels(device_id)
            )
            entry.detail["cancelled"] = cleared
        return device_id, cleared
