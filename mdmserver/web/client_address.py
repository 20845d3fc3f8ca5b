"""The client's address, for rate limits and logs, in one place.

Behind a reverse proxy every request comes from the proxy's address; the client is then the
proxy's ``X-Forwarded-For``, believed only from a trusted proxy (``MDM_TRUSTED_PROXIES``, the
same list that may forward client certificates): the rightmost hop that is not itself a trusted
proxy, so a client cannot choose its own address by sending the header.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from mdmserver.web.device_auth import Network, peer_in

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment


def client_address(environ: WSGIEnvironment, trusted_proxies: tuple[Network, ...] = ()) -> str:
    peer = str(environ.get("REMOTE_ADDR") or "")
    if not trusted_proxies or not peer_in(peer, trusted_proxies):
        return peer
    hops = [hop.strip() for hop in str(environ.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    for hop in reversed([h for h in hops if h]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a hop we cannot read: count the proxy, never a made-up name
        if not peer_in(hop, trusted_proxies):
            return hop
    return peer


def request_address() -> str:
    """The client address of the Flask request being served."""
    from flask import current_app, request

    from mdmserver.web.runtime import device_authenticator

    return client_address(request.environ, device_authenticator(current_app).trusted_proxies)
