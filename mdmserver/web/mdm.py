"""The device protocol endpoints: thin handlers from HTTP to the service layer.

``PUT /mdm/checkin`` and ``PUT /mdm/connect`` are a public contract: enrollment profiles in the
field point at them. Refusals are 400 / 403 / 410 / 413, never 401 (a 401 can make a device
unenroll), each a plain-text message.

Every enrolled device polls these two paths, so they are served by a bare WSGI layer in front
of the Flask app (:class:`DeviceEndpoints`) rather than by a blueprint: Flask's request context,
URL routing and request hooks cost about a quarter of a poll's CPU. Everything else passes on
to Flask. Request ids and the access log line are the same as on the Flask side.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from werkzeug.datastructures import EnvironHeaders

from mdmserver.errors import Kind
from mdmserver.logs import get_logger, log_request, request_id_for, request_id_var
from mdmserver.protocol.checkin import parse_checkin
from mdmserver.protocol.errors import ProtocolError
from mdmserver.protocol.results import parse_result
from mdmserver.service.base import Reply
from mdmserver.service.errors import BadDeviceRequest, DeviceRequestError
from mdmserver.web.errors import TOO_LARGE, refusal

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from mdmserver.assembly import Server
    from mdmserver.web.device_auth import DeviceAuthenticator

log = get_logger("http")

CHECKIN_PATH = "/mdm/checkin"
CONNECT_PATH = "/mdm/connect"
CHECKIN_CONTENT_TYPE = "application/x-apple-aspen-mdm-checkin"
# What devices send on the server URL; plain XML types are accepted for tools and proxies.
CONNECT_CONTENT_TYPES = frozenset(
    {"application/x-apple-aspen-mdm", "application/xml", "text/xml", "application/x-plist"}
)
TEXT = "text/plain; charset=utf-8"


class BodyTooLarge(DeviceRequestError):
    kind = Kind.TOO_LARGE

    def __init__(self) -> None:
        super().__init__(TOO_LARGE)


def checkin(rt: Server, authenticator: DeviceAuthenticator, environ: WSGIEnvironment) -> Reply:
    mime = _mime(environ)
    if mime != CHECKIN_CONTENT_TYPE:
        raise BadDeviceRequest(
            f"check-in requests must have Content-Type {CHECKIN_CONTENT_TYPE}, got {mime!r}"
        )
    body = read_body(environ, rt.config.max_body_bytes)
    device_request = authenticator.authenticate(
        EnvironHeaders(environ), body, environ.get("REMOTE_ADDR", "")
    )
    message = parse_checkin(body, max_bytes=rt.config.max_body_bytes)
    return rt.service.checkin(device_request, message)


def connect(rt: Server, authenticator: DeviceAuthenticator, environ: WSGIEnvironment) -> Reply:
    mime = _mime(environ)
    # No Content-Type at all is a device client that leaves it out (NanoMDM and MicroMDM take
    # those): the body is a signed plist either way. A type that says something else is refused.
    if mime and mime not in CONNECT_CONTENT_TYPES:
        raise BadDeviceRequest(
            f"command results must be an XML plist (Content-Type application/x-apple-aspen-mdm),"
            f" got {mime!r}"
        )
    body = read_body(environ, rt.config.max_body_bytes)
    device_request = authenticator.authenticate(
        EnvironHeaders(environ), body, environ.get("REMOTE_ADDR", "")
    )
    result = parse_result(body, max_bytes=rt.config.max_body_bytes)
    return rt.service.connect(device_request, result)


Handler = Callable[["Server", "DeviceAuthenticator", "WSGIEnvironment"], Reply]
ROUTES: dict[str, Handler] = {CHECKIN_PATH: checkin, CONNECT_PATH: connect}


class DeviceEndpoints:
    """WSGI middleware: serves the device paths itself, hands every other request to ``app``."""

    def __init__(
        self, server: Server, authenticator: DeviceAuthenticator, app: WSGIApplication
    ) -> None:
        self.server = server
        self.authenticator = authenticator
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        handler = ROUTES.get(environ.get("PATH_INFO", ""))
        if handler is None:
            return self.app(environ, start_response)
        started = time.perf_counter()
        request_id = request_id_for(environ.get("HTTP_X_REQUEST_ID", ""))
        token = request_id_var.set(request_id)
        try:
            status, body, content_type = self._answer(handler, environ)
            log_request(environ["REQUEST_METHOD"], environ["PATH_INFO"], status, started)
        finally:
            request_id_var.reset(token)
        headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("X-Request-ID", request_id),
        ]
        if status == 405:
            headers.append(("Allow", "PUT"))
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [body]

    def _answer(self, handler: Handler, environ: WSGIEnvironment) -> tuple[int, bytes, str]:
        if environ["REQUEST_METHOD"] != "PUT":
            return 405, b"devices send PUT requests to this path\n", TEXT
        try:
            reply = handler(self.server, self.authenticator, environ)
        except (DeviceRequestError, ProtocolError) as exc:
            status, message = refusal(exc)
            return status, _text(message), TEXT
        except Exception:
            log.exception("device_request_failed")
            return 500, _text("internal error; the request id is in the server log"), TEXT
        return 200, reply.body, reply.content_type


def read_body(environ: WSGIEnvironment, limit: int) -> bytes:
    """The request body, refused past ``limit`` bytes before more than that is read."""
    stream: Any = environ["wsgi.input"]
    declared = environ.get("CONTENT_LENGTH") or ""
    if declared:
        try:
            length = int(declared)
        except ValueError:
            raise BadDeviceRequest(f"Content-Length is not a number: {declared[:40]!r}") from None
        if length < 0:
            raise BadDeviceRequest("Content-Length is negative")
        if length > limit:
            raise BodyTooLarge()
        return stream.read(length) if length else b""
    if environ.get("wsgi.input_terminated"):  # chunked: the server marks where it ends
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise BodyTooLarge()
        return body
    return b""


def _mime(environ: WSGIEnvironment) -> str:
    return environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()


def _text(message: str) -> bytes:
    return (message + "\n").encode()
