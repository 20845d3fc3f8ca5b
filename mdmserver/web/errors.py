"""Error handlers: every refusal is a plain-text message with the right status, never a 500."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from mdmserver.bounds import control_character
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


def keep_allow(response: Response, exc: HTTPException) -> Response:
    """A 405 names the methods the path has (RFC 9110, 15.5.6). Handlers that write their own
    body pass their response through here so werkzeug's ``Allow`` is not lost."""
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def control_character_refusal() -> Response | None:
    """A 400 for a path or query parameter holding a control character (``%00`` and the like).

    No route has a use for one, PostgreSQL cannot compare a NUL, and SQLite would simply not
    find it: refusing it here, before any route runs, answers the same on both databases.
    """
    problem = None
    if control_character(request.path) is not None:
        problem = "the path contains a control character"
    else:
        for key, value in request.args.items(multi=True):
            if control_character(key) is not None or control_character(value) is not None:
                problem = f"query parameter {key[:40]!r} contains a control character"
                break
    if problem is None:
        return None
    log.info("control_character_refused", extra={"fields": {"reason": problem}})
    if request.path.startswith("/api/"):
        response = jsonify(error=problem)
        response.status_code = 400
        return response
    return _text(400, problem)


def register_error_handlers(app: Flask) -> None:
    app.before_request(control_character_refusal)

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
        return keep_allow(_text(exc.code or 500, exc.description or exc.name), exc)
