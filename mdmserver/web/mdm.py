"""The device protocol endpoints: thin handlers from HTTP to the service layer.

``PUT /mdm/checkin`` and ``PUT /mdm/connect`` are a public contract: enrollment profiles in the
field point at them. Refusals are 400 / 403 / 410, never 401 (a 401 can make a device unenroll).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from mdmserver.protocol.checkin import parse_checkin
from mdmserver.protocol.results import parse_result
from mdmserver.service.base import Reply
from mdmserver.service.errors import BadDeviceRequest
from mdmserver.web.runtime import runtime

bp = Blueprint("mdm", __name__)

CHECKIN_CONTENT_TYPE = "application/x-apple-aspen-mdm-checkin"
# What devices send on the server URL; plain XML types are accepted for tools and proxies.
CONNECT_CONTENT_TYPES = frozenset(
    {"application/x-apple-aspen-mdm", "application/xml", "text/xml", "application/x-plist"}
)


def _mime() -> str:
    return (request.mimetype or "").lower()


def _body() -> bytes:
    # Reading the body enforces MAX_CONTENT_LENGTH (413) before anything is parsed.
    return request.get_data(cache=False)


def _reply(reply: Reply) -> Response:
    return Response(reply.body, status=200, content_type=reply.content_type)


@bp.put("/mdm/checkin")
def checkin() -> Response:
    if _mime() != CHECKIN_CONTENT_TYPE:
        raise BadDeviceRequest(
            f"check-in requests must have Content-Type {CHECKIN_CONTENT_TYPE}, got {_mime()!r}"
        )
    rt = runtime(current_app)
    body = _body()
    device_request = rt.authenticator.authenticate(request.headers, body)
    message = parse_checkin(body, max_bytes=rt.config.max_body_bytes)
    return _reply(rt.service.checkin(device_request, message))


@bp.put("/mdm/connect")
def connect() -> Response:
    if _mime() not in CONNECT_CONTENT_TYPES:
        raise BadDeviceRequest(
            f"command results must be an XML plist (Content-Type application/x-apple-aspen-mdm),"
            f" got {_mime()!r}"
        )
    rt = runtime(current_app)
    body = _body()
    device_request = rt.authenticator.authenticate(request.headers, body)
    result = parse_result(body, max_bytes=rt.config.max_body_bytes)
    return _reply(rt.service.connect(device_request, result))
