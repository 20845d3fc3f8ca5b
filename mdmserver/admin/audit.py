"""The audit trail, the one way anything records a change: one row in ``audit_log`` per
mutating call, successful or refused, naming who (:func:`key_actor`, :func:`console_actor`,
:func:`cli_actor`), what (the action), the targets and the outcome ("ok", "refused <status>:
<message>" for a domain error, "failed: <type>" for a bug).

A refused call leaves no other trace in the database (nothing queued, nothing revoked), but
who tried what, and why it was refused, is itself worth keeping.

Records nest: the admin API (``web/api``'s ``@audited``) and the console open one around a
whole call, before the body is parsed (a malformed body is a refused call too), and the
service they call joins that record instead of writing a second row. The CLI calls the
services directly; there, the service's record is the only one.

No secret is written: a detail whose key names a secret (password, token, key, ...) is kept
as "[redacted]", and the services never put one in a target or a refusal's message.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from mdmserver.errors import DomainError
from mdmserver.logs import get_logger
from mdmserver.storage.ports import AdminPort

log = get_logger("audit")

REDACTED = "[redacted]"
# A detail named like a secret ("password", "api_key", "unlock_token"), not one that mentions
# one ("passcode_present" is a policy rule).
_SECRET_NAME = re.compile(
    r"(?:\w+_)?(?:password|passcode|secret|token|key|pin|challenge)", re.IGNORECASE
)


def key_actor(name: str) -> str:
    """An API key, by its name (never the key)."""
    return f"key:{name}"


def console_actor(name: str) -> str:
    """A person signed in to the console."""
    return f"console:{name}"


def cli_actor() -> str:
    """The operating-system user running ``mdmserver`` on the server."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no such user in the password database (containers)
        return "cli:unknown"


@dataclass
class AuditRecord:
    actor: str
    action: str
    targets: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


class Audit:
    def __init__(self, store: AdminPort) -> None:
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

    def _write(self, entry: AuditRecord, outcome: str) -> None:
        entry.detail = _without_secrets(entry.detail)
        self.store.audit(entry.actor, entry.action, entry.targets, outcome, entry.detail)
        fields = {
            "actor": entry.actor,
            "action": entry.action,
            "targets": len(entry.targets),
            "outcome": outcome,
            **{k: v for k, v in entry.detail.items() if isinstance(v, str | int)},
        }
        log.info("admin_action", extra={"fields": fields})


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: REDACTED if _SECRET_NAME.fullmatch(str(k)) else _without_secrets(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


# The record open in this thread or task, and the Audit it belongs to (see Audit.record).
_OPEN: ContextVar[tuple[Audit, AuditRecord] | None] = ContextVar("audit_record", default=None)
