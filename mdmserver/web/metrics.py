"""``GET /metrics`` in Prometheus text format.

Allowed without a key from the networks in ``metrics_allow`` (loopback by default); from
anywhere else a Bearer key of scope ``metrics`` or ``admin`` is needed. Behind a reverse proxy
every request comes from the proxy's address: then set ``metrics_allow`` to nothing ("") and
give Prometheus a key.
"""

from __future__ import annotations

import ipaddress
from functools import cache

from flask import Blueprint, Response, current_app, jsonify, request

from mdmserver.metrics.registry import CONTENT_TYPE
from mdmserver.web.runtime import runtime

bp = Blueprint("metrics", __name__)
SCRAPE_SCOPES = frozenset({"metrics", "admin"})


@cache
def _networks(allow: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in allow)


def _from_allowed_network() -> bool:
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in net for net in _networks(runtime(current_app).config.metrics_allow))


def _key_allows() -> Response | None:
    """None when the request carries a key that may scrape, else the refusal."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    rt = runtime(current_app)
    info = (
        rt.admin.api_keys.authenticate(key.strip())
        if rt.admin and scheme.lower() == "bearer"
        else None
    )
    if info is None:
        response = jsonify(error="metrics need a loopback client or a Bearer key of scope metrics")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="mdmserver metrics"'
        return response
    if info.scope not in SCRAPE_SCOPES:
        response = jsonify(error=f"an API key of scope {info.scope!r} may not read metrics")
        response.status_code = 403
        return response
    return None


@bp.get("/metrics")
def metrics() -> Response:
    if not _from_allowed_network():
        refusal = _key_allows()
        if refusal is not None:
            return refusal
    return Response(runtime(current_app).metrics.render(), content_type=CONTENT_TYPE)
