"""Error handlers: every refusal is a plain-text message with the right status, never a 500."""

from __future__ import annotations

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from mdmserver.logs import get_logger
from mdmserver.protocol.errors import ProtocolError
from mdmserver.service.errors import DeviceRequestError
from mdmserver.service.rate_limits import RateLimited

log = get_logger("http")

TOO_LARGE = "request body is larger than this server accepts"


def refusal(exc: DeviceRequestError | ProtocolError) -> tuple[int, str]:
    """The status and message answering a refused device request, logged. Shared by the
    device endpoints (web/mdm.py, in front of Flask) and the Flask handlers below."""
    if isinstance(exc, DeviceRequestError):
        log.info(
            "device_request_refused",
            extra={"fields": {"status": exc.status, "reason": exc.message}},
        )
        return exc.status, exc.message
    log.info("malformed_message", extra={"fields": {"status": 400, "reason": str(exc)}})
    return 400, str(exc)


def _text(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DeviceRequestError)
    @app.errorhandler(ProtocolError)
    def _refused(exc: DeviceRequestError | ProtocolError) -> Response:
        return _text(*refusal(exc))

    @app.errorhandler(RateLimited)
    def _rate_limited(exc: RateLimited) -> Response:
        response = _text(429, exc.message)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        if exc.code == 413:
            return _text(413, TOO_LARGE)
        return _text(exc.code or 500, exc.description or exc.name)
