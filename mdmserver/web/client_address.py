"""The client's address, for rate limits and logs: in one place, so that trusting a proxy's
X-Forwarded-For (from a configured trusted-proxy address only) changes this function alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment


def client_address(environ: WSGIEnvironment) -> str:
    """The address the request came from: the TCP peer (REMOTE_ADDR)."""
    return str(environ.get("REMOTE_ADDR") or "")
