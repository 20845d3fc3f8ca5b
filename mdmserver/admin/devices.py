"""The device inventory as administrators see it: filters, pages, one device in detail.

Filters arrive as strings (query parameters, CLI options) or JSON values (a command's
``filter``); :func:`parse_filter` turns either into a DeviceFilter or a message naming the
bad field. Cursors are opaque to callers (base64url of the last device id).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mdmserver.admin.errors import BadRequest, NotFound, unambiguous
from mdmserver.bounds import CHANNEL_ID
from mdmserver.catalog.schema import PLATFORMS, parse_version
from mdmserver.storage.ports import InventoryPort, InventoryQueryPort
from mdmserver.storage.sql.inventory_queries import DeviceDetail, DeviceFilter, DevicePage

FILTER_FIELDS = (
    "platform",
    "os_version",
    "min_os_version",
    "enrolled",
    "tag",
    "last_seen_before",
    "last_seen_after",
    "compliance",
    "supervised",
    "passcode_compliant",
    "filevault",
    "search",
)
INVENTORY_FACTS = ("supervised", "passcode_compliant", "filevault")  # true/false filters
COMPLIANCE_STATES = ("compliant", "noncompliant", "unknown")
SEARCH_MAX = 128
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def parse_filter(raw: Mapping[str, Any], where: str = "") -> DeviceFilter:
    unknown = sorted(set(raw) - set(FILTER_FIELDS))
    if unknown:
        raise BadRequest(f"{where}{unknown[0]}: unknown filter; use {', '.join(FILTER_FIELDS)}")
    values: dict[str, Any] = {}
    platform = raw.get("platform")
    if platform is not None:
        match = {p.lower(): p for p in PLATFORMS}.get(str(platform).lower())
        if match is None:
            raise BadRequest(f"{where}platform: must be one of {', '.join(PLATFORMS)}")
        values["platform"] = match
    for name in ("os_version", "min_os_version"):
        if raw.get(name) is not None:
            text = str(raw[name])
            try:
                parse_version(text)
            except ValueError:
                raise BadRequest(f"{where}{name}: not a version number: {text!r}") from None
            values[name] = text
    if raw.get("enrolled") is not None:
        values["enrolled"] = _boolean(raw["enrolled"], f"{where}enrolled")
    tags = raw.get("tag")
    if tags is not None:
        tags = [tags] if isinstance(tags, str) else tags
        if not isinstance(tags, list | tuple) or not all(isinstance(t, str) and t for t in tags):
            raise BadRequest(f"{where}tag: must be a tag name or a list of tag names")
        values["tags"] = tuple(tags)
    for name in ("last_seen_before", "last_seen_after"):
        if raw.get(name) is not None:
            values[name] = _moment(raw[name], f"{where}{name}")
    if raw.get("compliance") is not None:
        state = str(raw["compliance"]).lower()
        if state not in COMPLIANCE_STATES:
            raise BadRequest(f"{where}compliance: must be one of {', '.join(COMPLIANCE_STATES)}")
        values["compliance"] = state
    for fact in INVENTORY_FACTS:
        if raw.get(fact) is not None:
            values[fact] = _boolean(raw[fact], f"{where}{fact}")
    search = raw.get("search")
    if search is not None and str(search).strip():
        text = str(search).strip()
        if len(text) > SEARCH_MAX or any(ord(c) < 32 for c in text):
            raise BadRequest(f"{where}search: at most {SEARCH_MAX} printable characters")
        values["search"] = text
    return DeviceFilter(**values)


def _boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no"}:
        return False
    raise BadRequest(f"{name}: must be true or false, got {value!r}")


def _moment(value: Any, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name}: expected an ISO 8601 time, got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def encode_cursor(device_id: str | None) -> str | None:
    if device_id is None:
        return None
    return base64.urlsafe_b64encode(device_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        device_id = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        device_id = ""
    if not device_id or CHANNEL_ID.problem(device_id) is not None:
        raise BadRequest("cursor: not a cursor this server returned")
    return device_id


def parse_limit(value: Any) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"limit: must be an integer, got {value!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit: must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


class Devices:
    def __init__(self, inventory: InventoryQueryPort, facts: InventoryPort) -> None:
        self.inventory = inventory
        self.facts = facts

    def list(
        self, flt: DeviceFilter, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> DevicePage:
        return self.inventory.list_devices(flt, limit, decode_cursor(cursor))

    def show(self, ident: str) -> DeviceDetail:
        detail = unambiguous(lambda: self.inventory.device_detail(ident))
        if detail is None:
            raise NotFound(f"unknown device {ident!r} (no device has this UDID or serial number)")
        return detail

    def inventory_of(self, ident: str) -> tuple[str, dict[str, Any] | None, dict[str, datetime]]:
        """The device's id, its normalised inventory (None before any answer), and when each
        inventory command last answered."""
        device = self.show(ident).device
        return device.id, self.facts.facts(device.id), self.facts.answered_at(device.id)
