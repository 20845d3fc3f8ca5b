"""Sending commands to devices, and reading back how each target answered.

One command UUID is queued to every target (the storage model): the catalog judges the command
for every kind of target first, and any error refuses the whole send with nothing stored.
"""

from __future__ import annotations

import plistlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from mdmserver.admin.audit import Audit
from mdmserver.admin.devices import parse_filter
from mdmserver.admin.errors import BadRequest, Conflict, NotFound, Unprocessable, unambiguous
from mdmserver.catalog.schema import Platform
from mdmserver.commands.base import CommandRefused, Problem, TargetFacts
from mdmserver.commands.jsonvalues import to_json
from mdmserver.commands.prepare import Target, prepare
from mdmserver.protocol.commands import new_command
from mdmserver.storage.base import QueueItem
from mdmserver.storage.ports import CheckinPort, DevicePorts, InventoryQueryPort
from mdmserver.storage.sql.inventory_queries import TargetRow

SENDABLE = ("active", "pending")  # pending: authenticated, its TokenUpdate still to come
MAX_EXPIRES_IN = 366 * 24 * 3600
_NAMED = 5
REQUEST_FIELDS = frozenset(
    {"targets", "filter", "command", "priority", "expires_in", "allow_unknown_keys"}
)


@dataclass
class SendResult:
    command_uuid: str
    request_type: str
    targets: dict[str, str]  # device id -> enrollment id
    skipped: list[str] = field(default_factory=list)  # filter matches without an enrollment
    warnings: list[Problem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TargetStatus:
    device_id: str | None
    item: QueueItem

    def result_json(self) -> Any:
        if self.item.result is None:
            return None
        try:
            return to_json(plistlib.loads(self.item.result))
        except Exception:
            return {"unparsed": to_json(self.item.result)}


class _StorageSecrets:
    def __init__(self, storage: CheckinPort) -> None:
        self.storage = storage

    def unlock_token(self, enrollment_id: str) -> bytes | None:
        info = self.storage.enrollment(enrollment_id)
        return info.unlock_token if info is not None else None


class Commands:
    def __init__(
        self,
        storage: DevicePorts,
        inventory: InventoryQueryPort,
        audit: Audit,
        wake: Callable[[Sequence[str]], int] | None = None,
    ) -> None:
        self.storage = storage
        self.inventory = inventory
        self.audit = audit
        # Stores a durable push request for the targets (the outbox): a queued command is
        # useless until APNs wakes the device.
        self.wake = wake

    def send(
        self, request: Any, *, actor: str, progress: Callable[[int], None] | None = None
    ) -> SendResult:
        """``request``: {"targets"|"filter", "command", "priority"?, "expires_in"?}.

        ``progress`` is told how many targets each step got through (the CLI's bar).
        """
        named = _named_targets(request)
        with self.audit.record(actor, "command.send", named) as entry:
            if not isinstance(request, Mapping):
                raise BadRequest("the body must be a JSON object")
            entry.detail["request_type"] = _request_type(request.get("command"))
            unknown = sorted(set(request) - REQUEST_FIELDS)
            if unknown:
                raise BadRequest(f"{unknown[0]}: unknown field")
            if "command" not in request:
                raise BadRequest("command: missing (an object with a RequestType)")
            priority = _integer(request.get("priority", 0), "priority", -1000, 1000)
            expires_in = request.get("expires_in")
            if expires_in is not None:
                expires_in = _integer(expires_in, "expires_in", 1, MAX_EXPIRES_IN)
            allow_unknown = request.get("allow_unknown_keys", False)
            if not isinstance(allow_unknown, bool):
                raise BadRequest(
                    f"allow_unknown_keys: must be true or false, got {allow_unknown!r}"
                )
            rows, skipped = self._targets(request, progress)
            entry.targets = [row.device_id for row in rows]
            targets = [_target(row) for row in rows]
            prepared = prepare(
                request["command"],
                targets,
                _StorageSecrets(self.storage),
                allow_unknown_keys=allow_unknown,
            )
            command = new_command(prepared.request_type, prepared.payload)
            try:
                command.to_plist()
            except ValueError as exc:
                raise Unprocessable(f"command: {exc}") from None
            expires_at = datetime.now(UTC) + timedelta(seconds=expires_in) if expires_in else None
            self.storage.enqueue(
                command,
                [t.enrollment_id for t in targets],
                priority=priority,
                expires_at=expires_at,
                created_by=actor,
            )
            entry.detail["command_uuid"] = command.command_uuid
        if self.wake is not None and targets:
            self.wake([t.enrollment_id for t in targets])
        return SendResult(
            command.command_uuid,
            prepared.request_type,
            {t.device_id: t.enrollment_id for t in targets},
            skipped,
            prepared.warnings,
        )

    def status(self, command_uuid: str) -> tuple[str, list[TargetStatus]]:
        request_type = self.storage.command_request_type(command_uuid)
        if request_type is None:
            raise NotFound(f"unknown command {command_uuid!r}")
        items = self.storage.command_targets(command_uuid)
        owners = self.inventory.devices_of([i.enrollment_id for i in items])
        return request_type, [TargetStatus(owners.get(i.enrollment_id), i) for i in items]

    def _targets(
        self, request: Mapping[str, Any], progress: Callable[[int], None] | None
    ) -> tuple[list[TargetRow], list[str]]:
        has_targets, has_filter = "targets" in request, "filter" in request
        if has_targets == has_filter:
            raise BadRequest("give either targets (device ids) or filter, not both or neither")
        if has_targets:
            idents = request["targets"]
            if (
                not isinstance(idents, list)
                or not idents
                or not all(isinstance(i, str) and i for i in idents)
            ):
                raise BadRequest("targets: must be a non-empty list of device ids or serials")
            found, missing = unambiguous(lambda: self.inventory.resolve(idents, progress))
            if missing:
                raise NotFound(f"unknown device(s): {_names(missing)}")
            rows = list({row.device_id: row for row in found.values()}.values())
            idle = [row.device_id for row in rows if row.enrollment_status not in SENDABLE]
            if idle:
                raise Conflict(f"device(s) not enrolled: {_names(idle)}")
            return rows, []
        raw = request["filter"]
        if not isinstance(raw, Mapping):
            raise BadRequest("filter: must be an object")
        flt = parse_filter(raw, "filter.")
        rows = []
        skipped: list[TargetRow] = []
        for row in self.inventory.matching_targets(flt):
            (rows if row.enrollment_status in SENDABLE else skipped).append(row)
        if not rows:
            raise Unprocessable("filter: matches no enrolled device")
        return rows, [row.device_id for row in skipped]


@lru_cache(maxsize=4096)
def _facts(
    platform: Platform | None,
    os_version: str | None,
    user_enrollment: bool,
    unlock: bool,
    supervised: bool | None,
) -> TargetFacts:
    """One TargetFacts per kind of device: 100,000 iPhones on one OS share a single one."""
    return TargetFacts(platform, os_version, user_enrollment, unlock, supervised)


def _target(row: TargetRow) -> Target:
    assert row.enrollment_id is not None
    facts = _facts(
        row.platform, row.os_version, row.user_enrollment, row.has_unlock_token, row.supervised
    )
    return Target(row.device_id, row.enrollment_id, facts)


def _integer(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{name}: must be an integer, got {value!r}")
    if not low <= value <= high:
        raise BadRequest(f"{name}: must be between {low} and {high}, got {value}")
    return value


def _request_type(command: Any) -> str | None:
    value = command.get("RequestType") if isinstance(command, Mapping) else None
    return value if isinstance(value, str) else None


def _named_targets(request: Any) -> list[str]:
    targets = request.get("targets") if isinstance(request, Mapping) else None
    return [t for t in targets if isinstance(t, str)] if isinstance(targets, list) else []


def _names(idents: Sequence[str]) -> str:
    shown = ", ".join(idents[:_NAMED])
    return shown + (f" and {len(idents) - _NAMED} more" if len(idents) > _NAMED else "")


__all__ = ["CommandRefused", "Commands", "SendResult", "TargetStatus"]
