"""The console's blueprint and what applies to every console page: the sign-in guard, CSRF,
the security headers, the template globals and the error page. The route modules attach
their views to :data:`bp`."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from mdmserver.web.console.auth import (
    can,
    check_csrf,
    csrf_token,
    current_user,
    login_redirect,
)

bp = Blueprint(
    "console",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/console/static",
)

# Reachable without signing in: the sign-in page itself and the stylesheet it uses.
PUBLIC = frozenset({"console.login", "console.static"})


@bp.before_request
def _guard() -> Response | None:
    check_csrf()
    if request.endpoint in PUBLIC:
        return None
    user = current_user()
    if user is None:
        return login_redirect()
    if user.must_change_password and request.endpoint not in (
        "console.password",
        "console.logout",
    ):
        return redirect(url_for("console.password"))  # type: ignore[return-value]
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    # The console's own assets only: no inline script from elsewhere, no framing.
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    )
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "console.static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.app_context_processor
def _template_globals() -> dict[str, object]:
    return {"csrf_token": csrf_token, "can": can, "current_user": current_user}


@bp.errorhandler(HTTPException)
def _error(exc: HTTPException) -> tuple[str, int]:
    status = exc.code or 500
    return render_template("error.html", status=status, message=exc.description), status
