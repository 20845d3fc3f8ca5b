"""API keys: random, shown once, stored as a SHA-256 hash, each with a scope.

Scopes keep one key from opening every door: ``admin`` is this API, ``trust`` is the device
trust API (issue #7), ``metrics`` may only scrape ``/metrics``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from mdmserver.admin.audit import Audit
from mdmserver.admin.errors import BadRequest, Conflict, NotFound
from mdmserver.storage.ports import AdminPort
from mdmserver.storage.sql.admin_store import ApiKeyInfo, DuplicateKeyName

SCOPES = ("admin", "trust", "metrics")
KEY_PREFIX = "mdm_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class NewKey:
    key: str  # shown once, never stored
    info: ApiKeyInfo


class ApiKeys:
    def __init__(self, store: AdminPort, audit: Audit) -> None:
        self.store = store
        self.audit = audit

    def create(self, name: str, scope: str = "admin", *, actor: str) -> NewKey:
        with self.audit.record(actor, "api_key.create", [name]) as entry:
            entry.detail["scope"] = scope
            if not _NAME.fullmatch(name):
                raise BadRequest(
                    "name must be 1-128 letters, digits, '.', '_', '@' or '-', starting with a"
                    f" letter or digit; got {name!r}"
                )
            if scope not in SCOPES:
                raise BadRequest(f"scope must be one of {', '.join(SCOPES)}; got {scope!r}")
            key = KEY_PREFIX + secrets.token_urlsafe(32)  # 256 bits
            key_id = secrets.token_hex(8)
            try:
                self.store.create_key(key_id, name, scope, key_hash(key), key[:10])
            except DuplicateKeyName as exc:
                raise Conflict(str(exc)) from None
        info = next(k for k in self.store.list_keys() if k.id == key_id)
        return NewKey(key, info)

    def authenticate(self, key: str) -> ApiKeyInfo | None:
        """The active key, or None: unknown and revoked keys look the same to a caller."""
        if not key or len(key) > 256:
            return None
        info = self.store.key_by_hash(key_hash(key))
        return info if info is not None and info.active else None

    def list(self) -> list[ApiKeyInfo]:
        return self.store.list_keys()

    def revoke(self, name: str, *, actor: str) -> None:
        with self.audit.record(actor, "api_key.revoke", [name]):
            if not self.store.revoke_key(name):
                raise NotFound(f"no active API key named {name!r}")
