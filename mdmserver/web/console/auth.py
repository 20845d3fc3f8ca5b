"""Who is signed in to the console, and the guards every console request passes.

- The session is Flask's signed cookie (key: ``console_secret.key`` in the instance folder,
  0600), marked Secure, HttpOnly and SameSite=Strict, and it lives 8 hours at most. It holds
  the user's id and the account's session epoch: a password change, reset or disable bumps
  the epoch, which ends every other session of that account at its next request.
- Every POST carries the session's CSRF token (a hidden ``csrf_token`` field, or the
  ``X-CSRF-Token`` header for the page's scripts); without it the request is refused (400)
  before anything runs. A cross-site Origin is refused too.
- :func:`require` checks the signed-in person's role for an action on the server; the pages
  only hide what a role cannot do.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, g, redirect, request, session, url_for

from mdmserver.admin import Admin
from mdmserver.admin.audit import console_actor
from mdmserver.admin.console_users import allowed
from mdmserver.storage.sql.console_store import ConsoleUser
from mdmserver.web.runtime import runtime

SECRET_FILE = "console_secret.key"
SESSION_LIFETIME = timedelta(hours=8)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

P = ParamSpec("P")
R = TypeVar("R")


def configure_sessions(app: Flask, home: Path) -> None:
    app.secret_key = _secret(home)
    app.config.update(
        SESSION_COOKIE_NAME="mdm_console",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )


def _secret(home: Path) -> bytes:
    """The session-signing key: made once, 0600, never logged."""
    path = home / SECRET_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker made it first
        return path.read_bytes()
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key


def admin() -> Admin:
    service = runtime(current_app).admin
    assert service is not None, "the admin service is built by create_app"
    return service


def csrf_token() -> str:
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def check_csrf() -> None:
    """Refuse a state-changing request that does not prove it came from our own page."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        abort(400, "cross-site request refused (Origin does not match this server)")
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    expected = session.get(CSRF_FIELD)
    if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
        abort(400, "the form's CSRF token is missing or wrong; reload the page and try again")


def sign_in(user: ConsoleUser) -> None:
    """A fresh session for the person (a session fixed before sign-in is not reused)."""
    session.clear()
    session.permanent = True
    session["uid"] = user.id
    session["epoch"] = user.session_epoch
    csrf_token()


def sign_out() -> None:
    session.clear()


def current_user() -> ConsoleUser | None:
    if "user" in g:
        return g.user
    uid, epoch = session.get("uid"), session.get("epoch")
    user = None
    if isinstance(uid, str) and isinstance(epoch, int):
        user = admin().console_users.session_user(uid, epoch)
        if user is None:
            session.clear()
    g.user = user
    return user


def actor() -> str:
    """Who the audit trail names for this request: the signed-in person."""
    user = current_user()
    assert user is not None
    return console_actor(user.name)


def can(action: str) -> bool:
    user = current_user()
    return user is not None and allowed(user.role, action)


def require(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """View decorator: the signed-in person's role must allow ``action`` (403 otherwise)."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            if not can(action):
                abort(403, f"your role may not do this ({action})")
            return view(*args, **kwargs)

        return guarded

    return decorate


def login_redirect() -> Any:
    return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
