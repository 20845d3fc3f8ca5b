"""The admin API under ``/api/v1`` (JSON): one thin module per resource over the admin service.

Every route needs ``Authorization: Bearer <key>`` with a key of scope ``admin`` (401 without a
valid key, 403 with a key of another scope), except the OpenAPI document itself. Refusals are
JSON ``{"error": "..."}`` with the status the service chose.

Every mutating call by an authenticated key writes one audit row, refused ones included: each
mutating route is wrapped in :func:`audited`, which opens the record before the body is read,
and the service it calls joins that record (``Audit.record``). Refuse by raising a domain error
(mdmserver/errors.py) there: a refusal returned as a response would be recorded as "ok".
tests/api/test_audit_coverage.py checks every route.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from mdmserver.admin import Admin
from mdmserver.admin.audit import key_actor
from mdmserver.admin.errors import AmbiguousDevice, BadRequest
from mdmserver.bounds import BoundError, loads_json
from mdmserver.errors import DomainError, Kind
from mdmserver.logs import get_logger
from mdmserver.storage.base import AmbiguousSerial
from mdmserver.web.api.keys import ADMIN, is_public, require_scope
from mdmserver.web.errors import TOO_LARGE, json_refusal, keep_allow
from mdmserver.web.runtime import runtime

log = get_logger("api")

API_PREFIX = "/api/v1"

bp = Blueprint("api", __name__, url_prefix=API_PREFIX)
P = ParamSpec("P")
R = TypeVar("R")


def admin() -> Admin:
    service = runtime(current_app).admin
    assert service is not None, "the admin service is built by create_app"
    return service


def actor() -> str:
    """Who the audit log names: the API key's name."""
    return key_actor(g.api_key.name)


class _TooLarge(DomainError):
    kind = Kind.TOO_LARGE


def audited(
    action: str, targets: Sequence[str] = (), *, invalid: tuple[type[Exception], ...] = ()
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Route decorator: the whole call is one audit row named ``action`` (the one audit
    trail, admin/audit.py); its targets are ``targets`` and the path's arguments
    until the service names better ones.

    The record is opened before the view runs, so a body refused before the service is called
    (malformed JSON, unknown fields, too large) is in the log with its status like any other
    refusal. ``invalid``: exceptions the route's services raise for a bad value (a plain
    ``ValueError``), recorded and answered as 400."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            named = [*targets, *(str(value) for value in kwargs.values())]
            with admin().audit.record(actor(), action, named):
                try:
                    return view(*args, **kwargs)
                except DomainError:
                    raise
                except AmbiguousSerial as exc:
                    raise AmbiguousDevice(exc) from None
                except RequestEntityTooLarge:
                    raise _TooLarge(TOO_LARGE) from None
                except invalid as exc:
                    raise BadRequest(str(exc)) from None

        return run

    return decorate


def error(status: int, message: str, **extra: Any) -> Response:
    response = jsonify({"error": message, **extra})
    response.status_code = status
    return response


def json_body() -> Any:
    """The parsed JSON body within the bounds of mdmserver/bounds.py (depth, integer size, no
    NUL), or a 400 naming what is wrong with it."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise BadRequest("the request body is empty; expected a JSON object")
    try:
        return loads_json(raw)
    except BoundError as exc:
        raise BadRequest(f"JSON refused: {exc}") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise BadRequest(f"malformed JSON: {exc}") from None


@bp.before_request
def _authenticate() -> Response | None:
    return None if is_public() else require_scope(ADMIN)


@bp.errorhandler(AmbiguousSerial)
def _ambiguous(exc: AmbiguousSerial) -> Response:
    """Any route that looks a device up by UDID or serial, even one that did not convert it."""
    return json_refusal(AmbiguousDevice(exc))


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    if exc.code == 413:
        return error(413, TOO_LARGE)
    return keep_allow(error(exc.code or 500, exc.description or exc.name), exc)


def register_api_errors(app: Flask) -> None:
    """JSON 404/405 for unrouted paths under /api/ (create_app registers the blueprints)."""

    @app.errorhandler(404)
    @app.errorhandler(405)
    def _api_not_routed(exc: HTTPException) -> Response:
        # Unrouted paths under /api/ answer JSON too; elsewhere the plain-text default.
        if request.path.startswith(API_PREFIX + "/"):
            return keep_allow(error(exc.code or 404, exc.description or exc.name), exc)
        response = Response(
            (exc.description or exc.name) + "\n",
            status=exc.code or 404,
            content_type="text/plain; charset=utf-8",
        )
        return keep_allow(response, exc)
