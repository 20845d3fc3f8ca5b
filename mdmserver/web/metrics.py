"""``GET /metrics`` in Prometheus text format.

Allowed without a key from the networks in ``metrics_allow`` (loopback by default); from
anywhere else a Bearer key of scope ``metrics`` or ``admin`` is needed (the one API-key
check, web/api/keys.py). Behind a reverse proxy
every request comes from the proxy's address: then set ``metrics_allow`` to nothing ("") and
give Prometheus a key.
"""

from __future__ import annotations

import ipaddress
from functools import cache

from flask import Blueprint, Response, current_app, request

from mdmserver.metrics.registry import CONTENT_TYPE
from mdmserver.web.api.keys import ADMIN, METRICS, require_scope
from mdmserver.web.runtime import runtime

bp = Blueprint("metrics", __name__)
SCRAPE_SCOPES = (METRICS, ADMIN)


@cache
def _networks(allow: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in allow)


def _from_allowed_network() -> bool:
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in net for net in _networks(runtime(current_app).config.metrics_allow))


@bp.get("/metrics")
def metrics() -> Response:
    if not _from_allowed_network():
        refusal = require_scope(
            SCRAPE_SCOPES, missing="metrics need a loopback client or a Bearer key"
        )
        if refusal is not None:
            return refusal
    return Response(runtime(current_app).metrics.render(), content_type=CONTENT_TYPE)
