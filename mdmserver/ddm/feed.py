"""Status items into inventory and compliance, inside the device's request.

A status report that changes a fact compliance judges (passcode.is-compliant, FileVault, the
OS version, ...) is stored as inventory and the device re-judged at once, so a trust query
answered right after the report already reflects it: no polling, no schedule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from mdmserver.ddm.status import facts_from
from mdmserver.inventory.setup import InventoryRuntime

REQUEST_TYPE = "DeclarativeManagement.status"  # how inventory names this source


class InventoryFeed:
    def __init__(self, inventory: InventoryRuntime) -> None:
        self.inventory = inventory

    def __call__(
        self,
        device_id: str,
        user_channel: bool,
        items: Mapping[str, Any],
        changed: Mapping[str, Any],
    ) -> None:
        if user_channel:  # a user's channel says nothing about the device's compliance
            return
        facts = facts_from(changed)
        if not facts:
            return
        now = datetime.now(UTC)
        body = json.dumps(facts_from(items), sort_keys=True).encode()
        for attempt in (1, 2):
            try:
                self.inventory.inventory.store.record_answer(
                    device_id, REQUEST_TYPE, "", body, facts, platform=None, now=now
                )
                self.inventory.compliance.evaluate(device_id, now, in_request=True)
                return
            except IntegrityError:
                # The scheduler's first write for this device raced ours (both insert its
                # row); the row exists now, so the second attempt updates it.
                if attempt == 2:
                    raise
