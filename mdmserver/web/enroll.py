"""``GET /mdm/enroll?token=...``: the signed enrollment profile (public contract).

A refused token is a plain 403 with one message whatever the reason (unknown, revoked,
expired, used up, too long: the reason goes to the server log only) and nothing is created;
too many requests from one address or for one token are a 429 with Retry-After
(service/rate_limits.py). A profile that fails Apple's schema is our bug, so it is a 500
(logged by the service) rather than a broken profile on a device.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from mdmserver.enrollment.profile import PROFILE_CONTENT_TYPE, ProfileSchemaError
from mdmserver.enrollment.service import refuse_token
from mdmserver.web.client_address import request_address
from mdmserver.web.runtime import runtime

bp = Blueprint("enroll", __name__)

MAX_TOKEN_LENGTH = 256


@bp.get("/mdm/enroll")
def enroll() -> Response:
    profiles = runtime(current_app).enrollment.need_profiles()
    limiter = runtime(current_app).rate_limiter
    if limiter is not None:  # each profile costs a signature and a challenge row
        limiter.hit(limiter.limits.enroll_address, request_address())
    token = request.args.get("token", "")
    if not token:
        return Response("missing token parameter\n", status=400, content_type="text/plain")
    if len(token) > MAX_TOKEN_LENGTH:
        raise refuse_token("too long")
    if limiter is not None:
        limiter.hit(limiter.limits.enroll_token, token)
    try:
        profile = profiles.for_token(token, ota=_ota_choice(request.args.get("ota")))
    except ProfileSchemaError:
        return Response(
            "the enrollment profile could not be built\n", status=500, content_type="text/plain"
        )
    return Response(
        profile,
        content_type=PROFILE_CONTENT_TYPE,
        headers={
            "Content-Disposition": 'attachment; filename="enroll.mobileconfig"',
            "Cache-Control": "no-store",  # each download carries its own one-time challenge
        },
    )


def _ota_choice(value: str | None) -> bool | None:
    """``ota=1`` asks for Apple's profile service (over-the-air enrollment, phase 2 in
    web/enroll_ota.py), ``ota=0`` for the plain profile; absent, the token's default."""
    if value is None:
        return None
    return value.strip().lower() in {"1", "true", "yes"}
