"""Every refusal answered over HTTP, from the one table of mdmserver/errors.py: a domain
error of kind K answers ``HTTP_STATUS[K]`` with its message (JSON ``{"error": ..., **extra}``
under ``/api/``, plain text elsewhere), never a 500; anything else that escapes a view is a bug
and is Flask's 500. The bare-WSGI device endpoints (web/mdm.py) answer through
:func:`refusal`, the Flask routes through the handlers :func:`register_error_handlers`
installs (and :func:`register_refusals` on a blueprint that keeps a handler of its own).

A device never gets a 401: an MDM client may take it for "unenroll me", so a refusal of kind
unauthenticated answers a device 403.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from mdmserver.bounds import control_character
from mdmserver.errors import HTTP_STATUS, DomainError, Kind, RateLimited
from mdmserver.logs import get_logger
from mdmserver.protocol.errors import ProtocolError

log = get_logger("http")

TOO_LARGE = "request body is larger than this server accepts"


def status_for(exc: DomainError) -> int:
    """The one place a kind of refusal becomes an HTTP status."""
    return HTTP_STATUS[exc.kind]


def refusal(exc: DomainError | ProtocolError) -> tuple[int, str]:
    """The status and message answering a refused device request, logged. Shared by the
    device endpoints (web/mdm.py, in front of Flask) and the Flask handlers below."""
    if isinstance(exc, DomainError):
        status = status_for(exc)
        if exc.kind is Kind.UNAUTHENTICATED:
            status = HTTP_STATUS[Kind.FORBIDDEN]  # never a 401 to a device
        log.info(
            "device_request_refused",
            extra={"fields": {"status": status, "reason": exc.message}},
        )
        return status, exc.message
    log.info("malformed_message", extra={"fields": {"status": 400, "reason": str(exc)}})
    return HTTP_STATUS[Kind.INVALID], str(exc)


def json_refusal(exc: DomainError) -> Response:
    """``{"error": message, **extra}`` with the kind's status (and Retry-After for 429)."""
    response = jsonify({"error": exc.message, **exc.extra})
    response.status_code = status_for(exc)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def answer_refusal(exc: DomainError) -> Response:
    """A domain error raised by any Flask route: JSON under /api/, plain text elsewhere."""
    if request.path.startswith("/api/"):
        return json_refusal(exc)
    response = _text(*refusal(exc))
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def register_refusals(blueprint: Blueprint) -> None:
    """For a blueprint with a broader handler of its own (``ValueError``): Flask asks a
    blueprint's handlers before the app's, so the domain errors are answered here first."""
    blueprint.register_error_handler(DomainError, answer_refusal)


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
    app.register_error_handler(DomainError, answer_refusal)

    @app.errorhandler(ProtocolError)
    def _malformed(exc: ProtocolError) -> Response:
        return _text(*refusal(exc))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        if exc.code == 413:
            return _text(413, TOO_LARGE)
        return keep_allow(_text(exc.code or 500, exc.description or exc.name), exc)
