"""API keys and the audit log in SQL, on the same engine as the rest of the server.

Only a SHA-256 hash of each key is stored. A key is looked up by its hash (an index hit), then
compared with ``hmac.compare_digest`` so the final comparison takes constant time.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import IntegrityError

from mdmserver.storage.sql.schema import api_keys, audit_log
from mdmserver.storage.sql.types import utcnow

AUDIT_TARGETS_KEPT = 100  # a send to 100,000 devices keeps the count and the first ids


class DuplicateKeyName(ValueError):
    """An active key already has this name."""


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    id: str
    name: str
    scope: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    targets: list[str]
    target_count: int
    detail: dict[str, Any]
    outcome: str


class AdminStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # API keys --------------------------------------------------------------------------------

    def create_key(self, key_id: str, name: str, scope: str, key_hash: str, prefix: str) -> None:
        row = {
            "id": key_id,
            "name": name,
            "scope": scope,
            "key_hash": key_hash,
            "prefix": prefix,
            "created_at": utcnow(),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(api_keys).values(**row))
        except IntegrityError:
            raise DuplicateKeyName(f"an active API key is already named {name!r}") from None

    def key_by_hash(self, key_hash: str) -> ApiKeyInfo | None:
        """The key whose stored hash equals ``key_hash`` (compared in constant time)."""
        with self.engine.begin() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
        if row is None or not hmac.compare_digest(row.key_hash, key_hash):
            return None
        return self._key(row)

    def list_keys(self) -> list[ApiKeyInfo]:
        with self.engine.begin() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at, api_keys.c.name))
            return [self._key(row) for row in rows]

    def revoke_key(self, name: str) -> bool:
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    update(api_keys)
                    .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                    .values(revoked_at=utcnow())
                ).rowcount
            )

    # Audit log -------------------------------------------------------------------------------

    def audit(
        self,
        actor: str,
        action: str,
        targets: Sequence[str],
        outcome: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(audit_log).values(
                    at=utcnow(),
                    actor=actor[:128],
                    action=action[:64],
                    targets=json.dumps(list(targets[:AUDIT_TARGETS_KEPT])),
                    target_count=len(targets),
                    detail=json.dumps(detail or {}, default=str),
                    outcome=outcome[:512],
                )
            )

    def audit_entries(
        self, limit: int = 100, *, actor: str | None = None, action: str | None = None
    ) -> list[AuditEntry]:
        """The newest entries, optionally of one actor and of actions starting with ``action``."""
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if actor is not None:
            query = query.where(audit_log.c.actor == actor)
        if action is not None:
            query = query.where(audit_log.c.action.startswith(action, autoescape=True))
        with self.engine.begin() as conn:
            return [
                AuditEntry(
                    id=row.id,
                    at=row.at,
                    actor=row.actor,
                    action=row.action,
                    targets=json.loads(row.targets or "[]"),
                    target_count=row.target_count,
                    detail=json.loads(row.detail or "{}"),
                    outcome=row.outcome,
                )
                for row in conn.execute(query)
            ]

    @staticmethod
    def _key(row: Row[Any]) -> ApiKeyInfo:
        return ApiKeyInfo(
            id=row.id,
            name=row.name,
            scope=row.scope,
            prefix=row.prefix,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )
