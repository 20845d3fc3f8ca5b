"""HTTP(S) from simulated devices to the server: one keep-alive session per thread, timed.

Devices verify the server's TLS certificate against the instance CA (as a real device trusts
the root in its enrollment profile); every request's latency and every failure is recorded.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from mdmserver.simulator.stats import Stats

CHECKIN_TYPE = "application/x-apple-aspen-mdm-checkin"


class TransportError(RuntimeError):
    """The server could not be reached, or answered with a status the device did not expect."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Transport:
    def __init__(
        self, base_url: str, *, verify: str | bool = True, stats: Stats | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.verify = verify
        self.stats = stats or Stats()
        self.timeout = 60.0
        self._local = threading.local()

    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.verify = self.verify
            session.mount("https://", HTTPAdapter(pool_connections=1, pool_maxsize=2))
            session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=2))
            self._local.session = session
        return session

    def request(
        self, kind: str, method: str, path: str, *, expect: tuple[int, ...] = (200,), **kw: Any
    ) -> requests.Response:
        """One timed request; a failure or an unexpected status is recorded and raised."""
        url = path if path.startswith("http") else self.base_url + path
        started = time.perf_counter()
        try:
            # verify per request: requests lets REQUESTS_CA_BUNDLE override a session's verify.
            response = self.session().request(
                method, url, timeout=self.timeout, verify=self.verify, **kw
            )
        except requests.RequestException as exc:
            self.stats.error(f"{kind}: {type(exc).__name__}")
            raise TransportError(f"{method} {path}: {exc}") from exc
        self.stats.request(kind, time.perf_counter() - started)
        if response.status_code not in expect:
            self.stats.error(f"{kind}: HTTP {response.status_code}")
            raise TransportError(
                f"{method} {path} answered {response.status_code}: {response.text[:200]}",
                response.status_code,
            )
        return response

    def put(self, kind: str, path: str, body: bytes, headers: dict[str, str], **kw: Any) -> bytes:
        return self.request(kind, "PUT", path, data=body, headers=headers, **kw).content
