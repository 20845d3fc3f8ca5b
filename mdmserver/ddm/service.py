"""What the server does with Declarative Device Management: serve each channel its set, take
admins' declarations, keep devices in sync, and read the status channel.

A channel's declaration set is every declaration assigned to "all" or to one of its device's
tags, plus the declarations those need (an activation's configurations, a configuration's
assets) and the server's own (the default status subscriptions and their activation), minus
what the channel's OS, version or scope (system on the device channel, user on a macOS user
channel) does not take. Its DeclarationsToken is a digest of the members' ServerTokens.

When a set changes, the channel is sent a ``DeclarativeManagement`` command carrying the new
SyncTokens, and pushed; a channel that still has such a command waiting is not sent another
(it fetches the current set whatever the command said), so a burst of changes makes one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mdmserver.catalog.platforms import platform_of
from mdmserver.catalog.schema import command_spec, supports
from mdmserver.catalog.validate import ValidationError
from mdmserver.ddm import protocol
from mdmserver.ddm.protocol import DeclarationItem
from mdmserver.ddm.schema import DeclarationSpec, declaration_spec
from mdmserver.ddm.status import DEFAULT_SUBSCRIPTIONS, flatten, merge_list
from mdmserver.ddm.validate import (
    DeclarationRefused,
    check_declaration,
    os_problems,
    references,
)
from mdmserver.errors import Conflict, Kind, NotFound
from mdmserver.logs import get_logger
from mdmserver.protocol.checkin import DeclarativeManagement
from mdmserver.protocol.commands import new_command
from mdmserver.service.base import EMPTY, Reply
from mdmserver.service.errors import DeviceRequestError, UnknownDevice
from mdmserver.service.hooks import EnrolledEvent
from mdmserver.storage.ports import DeclarationPort, QueuePort
from mdmserver.storage.sql.ddm_store import ALL, Catalog, ChannelContext, DeclarationRow

log = get_logger("ddm")

JSON = "application/json"
SERVER_PREFIX = "com.mdmserver.ddm."
STATUS_SUBSCRIPTIONS_ID = SERVER_PREFIX + "status-subscriptions"
STATUS_ACTIVATION_ID = SERVER_PREFIX + "activation.status"
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
DECLARATION_CLASSES = ("activations", "configurations", "assets", "management")

Push = Callable[[list[str]], object]
# Called with (device_id, user_channel, every item now known, the items this report changed).
StatusListener = Callable[[str, bool, Mapping[str, Any], Mapping[str, Any]], None]


class DeclarationNotFound(NotFound, LookupError):
    pass


class DeclarationConflict(Conflict, ValueError):
    """A change other declarations forbid (deleting what an activation needs, ...)."""


class NotOnChannel(DeviceRequestError):
    """A device asked for a declaration that is not in its set."""

    kind = Kind.NOT_FOUND


@dataclass(frozen=True)
class Saved:
    declaration: DeclarationRow
    changed: bool
    warnings: list[ValidationError] = field(default_factory=list)
    synced: int = 0


def _now() -> datetime:
    return datetime.now(UTC)


def parse_target(text: str) -> str:
    """ "all", or "tag:<name>" (a bare name is taken as a tag), as for profiles."""
    text = text.strip()
    if not text or text == "tag:":
        raise ValueError("an assignment target is 'all' or 'tag:<name>'")
    return text if text == ALL or text.startswith("tag:") else f"tag:{text}"


class DDMService:
    def __init__(
        self,
        store: DeclarationPort,
        storage: QueuePort,
        *,
        push: Push | None = None,
        on_status: StatusListener | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.push = push
        self.on_status = on_status

    # The set each channel gets ------------------------------------------------------------

    def ensure_builtin(self) -> None:
        """The server's own declarations: the default status subscriptions, activated."""
        subscriptions = {"StatusItems": [{"Name": name} for name in DEFAULT_SUBSCRIPTIONS]}
        activation = {"StandardConfigurations": [STATUS_SUBSCRIPTIONS_ID]}
        revised = False
        for identifier, declaration_type, payload in (
            (
                STATUS_SUBSCRIPTIONS_ID,
                "com.apple.configuration.management.status-subscriptions",
                subscriptions,
            ),
            (STATUS_ACTIVATION_ID, "com.apple.activation.simple", activation),
        ):
            spec, checked, _ = check_declaration(
                identifier, {"Type": declaration_type, "Payload": payload}
            )
            token = protocol.server_token(declaration_type, identifier, checked)
            _, changed = self.store.put(
                identifier, declaration_type, spec.cls, checked, token, _now(), managed_by="server"
            )
            revised = revised or changed
        if revised:  # a new release changed them: channels that had the old ones sync
            self.sync()

    def _members(self, ctx: ChannelContext, catalog: Catalog | None) -> dict[str, DeclarationRow]:
        """What is assigned to the channel's device, with what it needs, transitively."""
        rows, targets = catalog or self.store.catalog()
        by_id = {row.identifier: row for row in rows}
        wanted = {ALL, *(f"tag:{tag}" for tag in ctx.tags)}
        chosen = [
            row.identifier
            for row in rows
            if row.managed_by == "server" or wanted & set(targets.get(row.identifier, ()))
        ]
        members: dict[str, DeclarationRow] = {}
        while chosen:
            identifier = chosen.pop()
            row = by_id.get(identifier)
            if row is None or identifier in members:
                continue
            members[identifier] = row
            chosen += [ref for _, ref in references(row.type, row.payload)]
        return _one_app_managed_per_app(members)

    def channel_set(
        self, ctx: ChannelContext, catalog: Catalog | None = None
    ) -> list[DeclarationItem]:
        """The declarations the channel gets: its members its OS, version and scope take."""
        platform = platform_of(ctx.product_name, ctx.model)
        return [
            _item(row)
            for row in self._members(ctx, catalog).values()
            if _unsupported(row, platform, ctx.os_version, ctx.user_channel) is None
        ]

    def unsupported_on(self, ctx: ChannelContext) -> dict[str, str]:
        """Members the channel does not get, and why (its OS, version or scope)."""
        platform = platform_of(ctx.product_name, ctx.model)
        out = {}
        for identifier, row in self._members(ctx, None).items():
            reason = _unsupported(row, platform, ctx.os_version, ctx.user_channel)
            if reason is not None:
                out[identifier] = reason
        return out

    def _channel(self, enrollment_id: str) -> ChannelContext:
        ctx = self.store.channel(enrollment_id)
        if ctx is None:
            raise UnknownDevice(f"no enrollment {enrollment_id!r}")
        return ctx

    # The device's requests ----------------------------------------------------------------

    def handle(self, message: DeclarativeManagement) -> Reply:
        """Answer one DeclarativeManagement check-in (its sender is already authenticated
        and bound by CertAuth); malformed requests raise ProtocolError (400)."""
        request = protocol.parse_endpoint(message.endpoint, message.data)
        ctx = self._channel(message.identity.id)
        now = _now()
        if isinstance(request, protocol.StatusRequest):
            self.ingest_status(ctx, request.report, request.raw, now)
            return EMPTY
        items = self.channel_set(ctx)
        if isinstance(request, protocol.TokensRequest):
            body = protocol.tokens_response(items, EPOCH)
        elif isinstance(request, protocol.ItemsRequest):
            body = protocol.items_response(items)
            token = protocol.declarations_token(items)
            if token != ctx.declarations_token:  # a fetch of the same set writes nothing
                self.store.note_channel(
                    ctx.enrollment_id, ctx.device_id, now, token=token, synced=True
                )
        else:
            found = next(
                (i for i in items if i.identifier == request.identifier and i.cls == request.cls),
                None,
            )
            if found is None:
                raise NotOnChannel(
                    f"no {request.cls} declaration {request.identifier!r} for this enrollment"
                )
            body = protocol.declaration_json(found)
        return Reply(body, JSON)

    # Status channel -----------------------------------------------------------------------

    def ingest_status(
        self, ctx: ChannelContext, report: Mapping[str, Any], raw: bytes, now: datetime
    ) -> dict[str, Any]:
        full = bool(report.get("FullReport", False))
        reported = flatten(report["StatusItems"])
        known = {
            item: value for item, (value, _) in self.store.status_items(ctx.enrollment_id).items()
        }
        merged: dict[str, Any] = {}
        for item, value in reported.items():
            old = known.get(item)
            if full:
                merged[item] = value
            elif isinstance(value, list):
                merged[item] = merge_list(old, value)
            elif item == "management.declarations" and isinstance(value, Mapping):
                base = old if isinstance(old, Mapping) else {}
                merged[item] = {
                    **base,
                    **{
                        k: merge_list(base.get(k), v) if isinstance(v, list) else v
                        for k, v in value.items()
                    },
                }
            else:
                merged[item] = value
        removed = [item for item in known if item not in reported] if full else []
        changed = self.store.record_status(
            ctx.enrollment_id, ctx.device_id, raw, full, known, merged, removed, now
        )
        if "management.declarations" in changed:
            self.store.save_declaration_states(
                ctx.enrollment_id, _declaration_states(changed["management.declarations"]), now
            )
        log.info(
            "ddm_status",
            extra={
                "fields": {
                    "enrollment_id": ctx.enrollment_id,
                    "full": full,
                    "items": len(reported),
                    "changed": sorted(changed),
                    "errors": len(report.get("Errors") or []),
                }
            },
        )
        if self.on_status is not None and changed:
            everything = {**{k: v for k, v in known.items() if k not in removed}, **merged}
            try:
                self.on_status(ctx.device_id, ctx.user_channel, everything, changed)
            except Exception:  # the report is stored: inventory's failure is not the device's
                log.exception(
                    "ddm_status_feed_failed", extra={"fields": {"enrollment_id": ctx.enrollment_id}}
                )
        return changed

    # Admin: declarations ------------------------------------------------------------------

    def put(self, identifier: str, body: Any) -> Saved:
        if identifier.startswith(SERVER_PREFIX):
            raise DeclarationRefused(
                [ValidationError("Identifier", f"{SERVER_PREFIX}* is managed by this server")]
            )
        spec, payload, warnings = check_declaration(identifier, body)
        existing = self.store.get(identifier)
        if existing is not None and existing.cls != spec.cls:
            raise DeclarationRefused(
                [ValidationError("Type", f"{identifier!r} is a {existing.cls}; delete it first")]
            )
        self._check_references(identifier, spec.name, payload)
        if existing is not None:
            self._check_reach(spec, payload, self.store.assignments(identifier))
        token = protocol.server_token(spec.name, identifier, payload)
        saved, changed = self.store.put(identifier, spec.name, spec.cls, payload, token, _now())
        synced = self.sync() if changed and existing is not None else 0
        log.info(
            "ddm_declaration_saved",
            extra={"fields": {"identifier": identifier, "type": spec.name, "changed": changed}},
        )
        return Saved(saved, changed, warnings, synced)

    def _check_references(self, identifier: str, declaration_type: str, payload: Any) -> None:
        errors = []
        spec = declaration_spec(declaration_type)
        want = "configuration" if spec is not None and spec.cls == "activation" else "asset"
        for path, ref in references(declaration_type, payload):
            row = self.store.get(ref)
            if row is None or row.cls != want:
                errors.append(ValidationError(path, f"no {want} declaration {ref!r}"))
        if errors:
            raise DeclarationRefused(errors)

    def _check_reach(
        self, spec: DeclarationSpec, payload: Mapping[str, Any], targets: Sequence[str]
    ) -> None:
        """Refuse what none of the devices the targets reach could take (their OS or version
        lacks the type or a key used); when some can, the others simply do not get it."""
        kinds = {
            (platform_of(product, model), version)
            for product, model, version in self.store.reached_devices(targets)
        }
        problems = [
            os_problems(spec, payload, platform, version)
            for platform, version in kinds
            if platform is not None
        ]
        if problems and all(problems) and len(problems) == len(kinds):
            raise DeclarationRefused(min(problems, key=len))

    def get(self, identifier: str) -> DeclarationRow:
        row = self.store.get(identifier)
        if row is None:
            raise DeclarationNotFound(f"no declaration {identifier!r}")
        return row

    def declarations(self) -> list[DeclarationRow]:
        return self.store.declarations()

    def delete(self, identifier: str) -> int:
        row = self.get(identifier)
        if row.managed_by != "admin":
            raise DeclarationConflict(f"{identifier!r} is managed by this server")
        users = [
            other.identifier
            for other in self.store.declarations()
            if any(ref == identifier for _, ref in references(other.type, other.payload))
        ]
        if users:
            raise DeclarationConflict(f"{identifier!r} is referenced by {', '.join(users)}")
        self.store.delete(identifier)
        return self.sync()

    def assign(self, identifier: str, target: str) -> tuple[bool, int]:
        """Whether the assignment is new, and how many channels were sent a sync."""
        row = self.get(identifier)
        _not_the_apps(row)
        # The declaration and what it brings along (an activation's configurations).
        for member in [row, *(self.store.get(ref) for _, ref in references(row.type, row.payload))]:
            spec = declaration_spec(member.type) if member is not None else None
            if member is not None and spec is not None:
                self._check_reach(spec, member.payload, [parse_target(target)])
        added = self.store.assign(identifier, parse_target(target), _now())
        return added, self.sync() if added else 0

    def unassign(self, identifier: str, target: str) -> tuple[bool, int]:
        _not_the_apps(self.get(identifier))
        removed = self.store.unassign(identifier, parse_target(target))
        return removed, self.sync() if removed else 0

    # Sync ---------------------------------------------------------------------------------

    def sync(self, enrollment_ids: Sequence[str] | None = None) -> int:
        """Send a DeclarativeManagement command to every DDM channel whose set's token is no
        longer the one it was last told; push them. Returns how many were sent one."""
        channels = self.store.enabled_channels(enrollment_ids)
        catalog = self.store.catalog()
        waiting = self.store.undelivered_syncs([c.enrollment_id for c in channels])
        sent = []
        now = _now()
        for ctx in channels:
            items = self.channel_set(ctx, catalog)
            token = protocol.declarations_token(items)
            if token == ctx.declarations_token:
                continue
            if ctx.enrollment_id not in waiting:
                self._queue_sync(ctx, items, now)
                sent.append(ctx.enrollment_id)
            self.store.note_channel(ctx.enrollment_id, ctx.device_id, now, token=token)
        if sent and self.push is not None:
            self.push(sent)
        if sent:
            log.info("ddm_sync_queued", extra={"fields": {"channels": len(sent)}})
        return len(sent)

    def _queue_sync(
        self, ctx: ChannelContext, items: Sequence[DeclarationItem], now: datetime
    ) -> str:
        tokens = protocol.sync_tokens(items, EPOCH)
        command = new_command(
            "DeclarativeManagement", {"Data": json.dumps(tokens, separators=(",", ":")).encode()}
        )
        self.storage.enqueue(command, [ctx.enrollment_id], created_by="ddm")
        return command.command_uuid

    def enable(self, enrollment_id: str) -> bool:
        """Turn DDM on for a channel whose OS supports it: queue the first sync (its set holds
        the default status subscriptions). False when the OS does not support DDM."""
        ctx = self._channel(enrollment_id)
        platform = platform_of(ctx.product_name, ctx.model)
        spec = command_spec("DeclarativeManagement")
        if spec is None or platform is None:
            return False
        if ctx.user_channel and platform != "macOS":
            return False  # DDM's user scope is the macOS user channel's
        reason = supports(
            spec,
            platform,
            os_version=ctx.os_version,
            user_channel=ctx.user_channel,
        )
        if reason is not None:
            log.info(
                "ddm_not_supported",
                extra={"fields": {"enrollment_id": enrollment_id, "reason": reason}},
            )
            return False
        items = self.channel_set(ctx)
        now = _now()
        self._queue_sync(ctx, items, now)
        token = protocol.declarations_token(items)
        self.store.note_channel(enrollment_id, ctx.device_id, now, token=token, enabled=True)
        log.info("ddm_enabled", extra={"fields": {"enrollment_id": enrollment_id}})
        return True

    def on_enrolled(self, event: EnrolledEvent) -> None:
        self.enable(event.identity.id)

    # Reading ------------------------------------------------------------------------------

    def device_declarations(self, enrollment_id: str) -> dict[str, Any]:
        ctx = self._channel(enrollment_id)
        items = {i.identifier: i for i in self.channel_set(ctx)}
        states = {s.identifier: s for s in self.store.declaration_states(enrollment_id)}
        out = []
        for identifier in sorted(set(items) | set(states)):
            item, state = items.get(identifier), states.get(identifier)
            out.append(
                {
                    "identifier": identifier,
                    "type": item.type if item else None,
                    "class": item.cls if item else state.cls if state else None,
                    "assigned": item is not None,
                    "server_token": item.server_token if item else None,
                    "device": None
                    if state is None
                    else {
                        "active": state.active,
                        "valid": state.valid,
                        "server_token": state.server_token,
                        "current": item is not None and state.server_token == item.server_token,
                        "reasons": state.reasons or [],
                        "updated_at": state.updated_at.isoformat(),
                    },
                }
            )
        return {
            "enrollment_id": enrollment_id,
            "enabled": self.store.enabled(enrollment_id),
            "declarations_token": protocol.declarations_token(items.values()),
            "declarations": out,
            "not_applicable": [
                {"identifier": k, "reason": v} for k, v in sorted(self.unsupported_on(ctx).items())
            ],
        }


APP_MANAGED = "com.apple.configuration.app.managed"
_APP_KEYS = ("AppStoreID", "BundleID", "ManifestURL")  # one and only one (Apple's schema)


def _one_app_managed_per_app(members: dict[str, DeclarationRow]) -> dict[str, DeclarationRow]:
    """A channel gets at most one ``app.managed`` per app: where its targets reach both an
    ``Install`` ``Required`` and an ``Optional`` declaration of the same app (a device in both
    a required and an available target), the Optional ones, and the activations that only
    activate them, are left out. This is resolved here, per channel, because targets cannot say
    "tag A but not tag B", and an activation predicate only sees the device's own properties,
    not the server's tags; two app.managed of one app would compete on the device."""

    def app_key(row: DeclarationRow) -> tuple[str, str] | None:
        payload = row.payload if isinstance(row.payload, Mapping) else {}
        return next(((k, str(payload[k])) for k in _APP_KEYS if k in payload), None)

    def required(row: DeclarationRow) -> bool:
        behavior = row.payload.get("InstallBehavior") if isinstance(row.payload, Mapping) else None
        install = behavior.get("Install") if isinstance(behavior, Mapping) else None
        return install == "Required"

    apps = [r for r in members.values() if r.type == APP_MANAGED and app_key(r) is not None]
    required_apps = {app_key(r) for r in apps if required(r)}
    dropped = {r.identifier for r in apps if not required(r) and app_key(r) in required_apps}
    if not dropped:
        return members
    for row in list(members.values()):
        refs = [ref for _, ref in references(row.type, row.payload)]
        if row.type.startswith("com.apple.activation.") and refs and set(refs) <= dropped:
            dropped.add(row.identifier)
    return {i: r for i, r in members.items() if i not in dropped}


def _not_the_apps(row: DeclarationRow) -> None:
    """An app's app.managed declarations follow its assignments (mdmserver.apps.declarative);
    they are assigned through /api/v1/apps, never here."""
    if row.managed_by == "apps":
        raise DeclarationConflict(
            f"{row.identifier!r} follows an app's assignments: assign the app instead"
        )


def _item(row: DeclarationRow) -> DeclarationItem:
    return DeclarationItem(
        identifier=row.identifier,
        cls=row.cls,
        type=row.type,
        server_token=row.server_token,
        payload=row.payload,
        updated_at=row.updated_at,
    )


def _unsupported(
    row: DeclarationRow, platform: str | None, os_version: str | None, user_channel: bool
) -> str | None:
    spec = declaration_spec(row.type)
    if spec is None:
        return f"{row.type} is not a declaration type this server knows"
    return spec.unsupported(platform, os_version, user_channel=user_channel)


def _declaration_states(value: Any) -> list[dict[str, Any]]:
    """Rows for ddm_declaration_states from a management.declarations status value."""
    if not isinstance(value, Mapping):
        return []
    rows: dict[str, dict[str, Any]] = {}
    for section in DECLARATION_CLASSES:
        for entry in value.get(section) or []:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("identifier"), str):
                continue
            reasons = entry.get("reasons")
            rows[entry["identifier"]] = {
                "identifier": entry["identifier"][:255],
                "class": section.rstrip("s"),
                "active": entry.get("active") if isinstance(entry.get("active"), bool) else None,
                "valid": str(entry.get("valid"))[:16] if entry.get("valid") is not None else None,
                "server_token": str(entry.get("server-token"))[:64]
                if entry.get("server-token") is not None
                else None,
                "reasons": json.dumps(reasons) if isinstance(reasons, list) else None,
            }
    return list(rows.values())


__all__ = [
    "DDMService",
    "DeclarationConflict",
    "DeclarationNotFound",
    "DeclarationRefused",
    "NotOnChannel",
    "Saved",
    "parse_target",
]
