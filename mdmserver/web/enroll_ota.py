"""``POST /mdm/enroll/ota``: phase 2 of over-the-air enrollment (Apple's profile service).

The device posts its attributes as a CMS SignedData; the answer is the enrollment profile bound
to its UDID (mdmserver.enrollment.ota). Phase 1 is ``GET /mdm/enroll?token=…&ota=1``
(web/enroll.py). Refusals are plain text: 400 for a malformed body, 403 for a signature or signer
not accepted or a spent challenge, 503 without an Apple device CA bundle.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from mdmserver.enrollment.profile import PROFILE_CONTENT_TYPE
from mdmserver.enrollment.profile_service import MAX_ATTRIBUTES_BYTES, PROFILE_SERVICE_PATH
from mdmserver.web.runtime import runtime

bp = Blueprint("enroll_ota", __name__)

# The attributes, the signature and the device's chain: a few KiB; anything larger is refused.
MAX_BODY_BYTES = MAX_ATTRIBUTES_BYTES + 48 * 1024


@bp.post(PROFILE_SERVICE_PATH)
def device_attributes() -> Response:
    ota = runtime(current_app).enrollment.need_ota()
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise RequestEntityTooLarge()
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise RequestEntityTooLarge()
    profile = ota.enroll(body)
    return Response(
        profile,
        content_type=PROFILE_CONTENT_TYPE,
        headers={
            "Content-Disposition": 'attachment; filename="enroll.mobileconfig"',
            "Cache-Control": "no-store",
        },
    )
