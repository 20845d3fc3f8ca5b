"""The one API-key check: every route under ``/api/v1`` (and ``/metrics`` from afar) goes
through :func:`require_scope`.

A request carries ``Authorization: Bearer <key>`` (issue #5's key store, ``mdmserver api-key
create --scope ...``). The answers, the same on every route:

- 429 with ``Retry-After`` when this address guessed wrong too often, before the key is even
  looked at, so that a right guess among the refused ones cannot be told apart;
- 401 with ``WWW-Authenticate: Bearer`` for no key, an unknown or a revoked one (each wrong
  key counts against the address);
- 403 for a valid key of another scope (an ``admin`` key on the trust API, a ``trust`` key on
  the admin API, a ``metrics`` key anywhere but ``/metrics``).

On the trust API, verified keys are kept for :data:`KEY_CACHE_SECONDS`: an access proxy asks
it many times a second, and each answer must not pay a database round trip for its key. A
revoked trust key stops working within that many seconds; unknown keys are never cached.

A view that needs no key (the OpenAPI document, the JWKS) says so with :func:`public`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Collection
from typing import TypeVar
from weakref import WeakKeyDictionary

from flask import Flask, Response, current_app, g, jsonify, request

from mdmserver.logs import get_logger
from mdmserver.storage.sql.admin_store import ApiKeyInfo
from mdmserver.web.client_address import request_address
from mdmserver.web.runtime import runtime

log = get_logger("api")

ADMIN = "admin"
TRUST = "trust"
METRICS = "metrics"
KEY_CACHE_SECONDS = 5.0
_CACHE_MAX = 1000
REALM = 'Bearer realm="mdmserver"'

V = TypeVar("V", bound=Callable[..., object])


def public(view: V) -> V:
    """Mark a view that answers without a key (it describes, it opens nothing)."""
    view.public = True  # type: ignore[attr-defined]
    return view


def is_public() -> bool:
    """Whether the view this request is routed to is marked :func:`public`."""
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "public", False))


class KeyCache:
    """Recently verified keys by their SHA-256, each until its deadline (monotonic time)."""

    def __init__(self, seconds: float = KEY_CACHE_SECONDS) -> None:
        self.seconds = seconds
        self._items: dict[str, tuple[float, ApiKeyInfo]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, verify: Callable[[str], ApiKeyInfo | None]) -> ApiKeyInfo | None:
        digest = hashlib.sha256(key.encode()).hexdigest()
        now = time.monotonic()
        hit = self._items.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        info = verify(key)
        if info is not None:
            with self._lock:
                if len(self._items) >= _CACHE_MAX:
                    self._items.clear()
                self._items[digest] = (now + self.seconds, info)
        return info


# One cache per app (tests build many apps, each with its own key store).
_CACHES: WeakKeyDictionary[Flask, KeyCache] = WeakKeyDictionary()


def _cache(app: Flask) -> KeyCache:
    cache = _CACHES.get(app)
    if cache is None:
        cache = _CACHES.setdefault(app, KeyCache())
    return cache


def require_scope(
    scopes: str | Collection[str], *, cached: bool = False, missing: str | None = None
) -> Response | None:
    """None when the request carries an active key of one of ``scopes`` (kept in ``g.api_key``),
    else the refusal to answer with. Called from a ``before_request``.

    ``cached``: accept a key verified in the last KEY_CACHE_SECONDS (the trust API's hot path;
    elsewhere a revocation takes effect on the next request). ``missing`` words the 401 for a
    route whose callers need a hint (``/metrics``)."""
    allowed = (scopes,) if isinstance(scopes, str) else tuple(scopes)
    rt = runtime(current_app)
    limiter, address = rt.rate_limiter, request_address()
    if limiter is not None:
        limiter.check(limiter.limits.auth_failures_address, address)  # raises RateLimited
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return unauthorized(missing or "missing API key: send Authorization: Bearer <key>")
    keys = rt.admin.api_keys if rt.admin is not None else None
    info = None
    if keys is not None and cached:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        info = _cache(app).get(key, keys.authenticate)
    elif keys is not None:
        info = keys.authenticate(key)
    if info is None:
        if limiter is not None:
            limiter.hit(limiter.limits.auth_failures_address, address)
        return unauthorized(missing or "invalid or revoked API key")
    if info.scope not in allowed:
        log.info("api_forbidden", extra={"fields": {"key": info.name, "scope": info.scope}})
        needed = " or ".join(repr(s) for s in allowed)
        return refusal(403, f"this API key has scope {info.scope!r}; this route needs {needed}")
    g.api_key = info
    return None


def refusal(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response


def unauthorized(message: str) -> Response:
    log.info("api_unauthorized", extra={"fields": {"path": request.path, "reason": message}})
    response = refusal(401, message)
    response.headers["WWW-Authenticate"] = REALM
    return response
