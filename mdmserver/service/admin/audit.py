"""The audit trail: one row per mutating call, successful or refused.

A refused call leaves no other trace in the database (nothing queued, nothing revoked), but
who tried what, and why it was refused, is itself worth keeping.

Records nest: the admin API opens one around a whole call, before the body is parsed (a
malformed body is a refused call too), and the service it calls joins that record instead of
writing a second row. The CLI calls the services directly; there, the service's record is
the only one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from mdmserver.errors import DomainError
from mdmserver.logs import get_logger
from mdmserver.storage.admin_store import AdminStore

log = get_logger("audit")


@dataclass
class AuditRecord:
    actor: str
    action: str
    targets: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


class Audit:
    def __init__(self, store: AdminStore) -> None:
        self.store = store

    @contextmanager
    def record(
        self, actor: str, action: str, targets: list[str] | None = None
    ) -> Iterator[AuditRecord]:
        """Write the row when the block ends: "ok", or the refusal and its status.

        Inside a record of this Audit already open (in this thread or task), the block joins
        it: its targets (when given) and detail go into that record, whose action and
        outcome stand, so the call is still one row."""
        outer = _OPEN.get()
        if outer is not None and outer[0] is self:
            if targets:
                outer[1].targets = list(targets)
            yield outer[1]
            return
        entry = AuditRecord(actor, action, list(targets or []))
        token = _OPEN.set((self, entry))
        try:
            yield entry
        except DomainError as exc:
            self._write(entry, f"refused {exc.status}: {exc}")
            raise
        except Exception as exc:
            self._write(entry, f"failed: {type(exc).__name__}")
            raise
        finally:
            _OPEN.reset(token)
        self._write(entry, "ok")

    def outcome(
        self, actor: str, action: str, targets: list[str], status: int, message: str = ""
    ) -> None:
        """Record a change whose outcome is only known as an HTTP status (feature routes)."""
        outcome = "ok" if status < 400 else f"refused {status}: {message}".rstrip(": ")
        self._write(AuditRecord(actor, action, targets), outcome)

    def _write(self, entry: AuditRecord, outcome: str) -> None:
        self.store.audit(entry.actor, entry.action, entry.targets, outcome, entry.detail)
        fields = {
            "actor": entry.actor,
            "action": entry.action,
            "targets": len(entry.targets),
            "outcome": outcome,
            **{k: v for k, v in entry.detail.items() if isinstance(v, str | int)},
        }
        log.info("admin_action", extra={"fields": fields})


# The record open in this thread or task, and the Audit it belongs to (see Audit.record).
_OPEN: ContextVar[tuple[Audit, AuditRecord] | None] = ContextVar("audit_record", default=None)
