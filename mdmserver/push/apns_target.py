"""Where aioapns connects and which server certificates it trusts, decided in one place.

aioapns has no host argument: the gateway's host and port are the class constants
``APNS_SERVER``/``APNS_PORT`` of its protocol classes, read each time a connection is opened. So
rather than patching aioapns globally (a reconnect after the patch is undone would go elsewhere),
a redirected client gets its own protocol subclass with the constants overridden, bound to its
pool for its whole life. Trust works the same way: the stand-in's CA is added to that client's
SSL context only, on top of the system roots; verification is never switched off. Without an
override nothing is touched and aioapns talks to Apple's hosts with the system trust store.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from aioapns import APNs
from aioapns.connection import APNsTLSClientProtocol

from mdmserver.push.aioapns_protocol import tuned_protocol


class ApnsEndpointError(ValueError):
    """An endpoint override that cannot work (bad host, port or CA)."""


@dataclass(frozen=True)
class ApnsEndpoint:
    """A push gateway other than Apple's, and the CA that issued its TLS certificate."""

    host: str
    port: int
    ca_pem: bytes | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host or any(c.isspace() for c in self.host):
            raise ApnsEndpointError(f"APNs endpoint host must be a hostname, got {self.host!r}")
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise ApnsEndpointError(f"APNs endpoint port must be an int, got {self.port!r}")
        if not 0 < self.port < 65536:
            raise ApnsEndpointError(f"APNs endpoint port out of range: {self.port}")
        if self.ca_pem is not None and not isinstance(self.ca_pem, bytes):
            raise ApnsEndpointError("APNs endpoint ca_pem must be PEM bytes or None")


_override: ApnsEndpoint | None = None
_override_lock = threading.Lock()


@contextmanager
def use_apns_endpoint(host: str, port: int, ca_pem: bytes | None = None) -> Iterator[ApnsEndpoint]:
    """Point push clients created inside the block at ``host:port`` (tests and demos).

    Process-wide; clients keep the endpoint they were created with after the block ends.
    """
    global _override
    endpoint = ApnsEndpoint(host, port, ca_pem)
    with _override_lock:
        previous, _override = _override, endpoint
    try:
        yield endpoint
    finally:
        with _override_lock:
            _override = previous


def current_endpoint() -> ApnsEndpoint | None:
    """The endpoint override in force, or None for Apple's gateways."""
    return _override


def build_apns(
    cert_file: str,
    topic: str,
    *,
    use_sandbox: bool,
    endpoint: ApnsEndpoint | None,
    **options: Any,
) -> APNs:
    """An aioapns client for a push certificate file, aimed at ``endpoint`` or at Apple.

    Must run on the event loop that will use the client (aioapns binds to it on creation).
    """
    context = ssl.create_default_context()
    if endpoint is not None and endpoint.ca_pem is not None:
        try:
            context.load_verify_locations(cadata=endpoint.ca_pem.decode("ascii"))
        except (ssl.SSLError, UnicodeDecodeError, ValueError) as exc:
            raise ApnsEndpointError(f"APNs endpoint CA is not usable PEM: {exc}") from exc
    apns = APNs(
        client_cert=cert_file,
        topic=topic,
        use_sandbox=use_sandbox,
        ssl_context=context,
        **options,
    )
    pool = apns.pool
    # The lru_caches below take a class; mypy wrongly sees class objects as unhashable there.
    base = pool.protocol_class
    if endpoint is None:
        pool.protocol_class = tuned_protocol(base)  # type: ignore[arg-type]
    else:
        pool.protocol_class = _redirected(base, endpoint.host, endpoint.port)  # type: ignore[arg-type]
    return apns


@lru_cache(maxsize=32)
def _redirected(
    base: type[APNsTLSClientProtocol], host: str, port: int
) -> type[APNsTLSClientProtocol]:
    """A subclass of (tuned) aioapns' protocol whose gateway constants name ``host:port``."""
    return type(
        f"{base.__name__}To_{host}_{port}",
        (tuned_protocol(base),),  # type: ignore[arg-type]  # a class is hashable
        {"APNS_SERVER": host, "APNS_PORT": port},
    )
