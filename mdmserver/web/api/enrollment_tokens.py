"""``GET``/``POST /api/v1/enrollment-tokens`` and ``DELETE .../<id>`` (issue #3's token store).

A created token is in the 201 answer once and never again; only its hash is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, jsonify

from mdmserver.admin import views as out
from mdmserver.admin.errors import BadRequest
from mdmserver.bounds import EXPIRES_IN, TOKEN_USES, BoundError, IntRule
from mdmserver.web.api import actor, admin, audited, json_body

bp = Blueprint("enrollment_tokens", __name__)
_FIELDS = frozenset({"uses", "expires_in", "tags", "ota", "require_ota"})


@bp.get("/enrollment-tokens")
def list_tokens() -> Response:
    now = datetime.now(UTC)
    return jsonify(tokens=[out.token(t, now) for t in admin().tokens.list()])


@bp.post("/enrollment-tokens")
@audited("enrollment_token.create")
def create_token() -> tuple[Response, int]:
    body = json_body()
    if not isinstance(body, Mapping):
        raise BadRequest("the body must be a JSON object")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise BadRequest(
            f"{unknown[0]}: unknown field; use uses, expires_in, tags, ota, require_ota"
        )
    uses = _bounded(body.get("uses"), TOKEN_USES, "uses")
    expires_in = _bounded(body.get("expires_in"), EXPIRES_IN, "expires_in")
    tags = body.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise BadRequest("tags: must be a list of strings")
    flags = {name: body.get(name, False) for name in ("ota", "require_ota")}
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise BadRequest(f"{name}: must be true or false, got {value!r}")
    new = admin().tokens.create(
        uses=uses,
        lifetime=timedelta(seconds=expires_in) if expires_in else None,
        tags=tuple(tags),
        actor=actor(),
        **flags,
    )
    return jsonify({**out.token(new.info, datetime.now(UTC)), "token": new.token}), 201


@bp.delete("/enrollment-tokens/<token_id>")
@audited("enrollment_token.revoke")
def revoke_token(token_id: str) -> Response:
    admin().tokens.revoke(token_id, actor=actor())
    return jsonify(id=token_id, revoked=True)


def _bounded(value: object, rule: IntRule, name: str) -> int | None:
    if value is None:
        return None
    try:
        return rule.check(value, f"{name}:")
    except BoundError as exc:
        raise BadRequest(str(exc)) from None
