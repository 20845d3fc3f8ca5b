"""Enrollment tokens for the admin API: issue #3's token service, with the audit trail."""

from __future__ import annotations

from datetime import timedelta

from mdmserver.admin.audit import Audit
from mdmserver.admin.errors import BadRequest, NotFound
from mdmserver.enrollment.service import EnrollmentTokens, NewToken, TokenRequestError
from mdmserver.storage.sql.enrollment_store import TokenInfo


class AuditedTokens:
    def __init__(self, tokens: EnrollmentTokens, audit: Audit) -> None:
        self.tokens = tokens
        self.audit = audit

    def list(self) -> list[TokenInfo]:
        return self.tokens.list()

    def create(
        self,
        *,
        uses: int | None,
        lifetime: timedelta | None,
        tags: tuple[str, ...],
        actor: str,
        ota: bool = False,
        require_ota: bool = False,
    ) -> NewToken:
        with self.audit.record(actor, "enrollment_token.create") as entry:
            entry.detail.update(uses=uses, tags=",".join(tags), ota=ota, require_ota=require_ota)
            try:
                new = self.tokens.create(
                    uses=uses, lifetime=lifetime, tags=tags, ota=ota, require_ota=require_ota
                )
            except (TokenRequestError, ValueError) as exc:
                raise BadRequest(str(exc)) from None
            entry.targets = [new.info.id]
        return new

    def revoke(self, token_id: str, *, actor: str) -> None:
        with self.audit.record(actor, "enrollment_token.revoke", [token_id]):
            if not self.tokens.revoke(token_id):
                raise NotFound(f"no active enrollment token with id {token_id!r}")
