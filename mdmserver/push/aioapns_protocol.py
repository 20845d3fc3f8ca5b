"""Two fixes and one speed-up for aioapns 4.0's connection protocol, applied by subclassing.

- A GOAWAY (APNs sends one when it shuts a connection down, and the stand-in does when the
  client's receive window is spent) closes h2's state machine at once, but the connection stays
  in aioapns' pool until the socket is gone; a push handed to it meanwhile failed with h2's
  ProtocolError, which aioapns does not catch. Such a connection now reports itself busy, and a
  send on it raises aioapns' ConnectionClosed, which aioapns retries on another connection.
- aioapns flushes h2's buffer after every request (one TLS record and one syscall each, plus a
  re-armed inactivity timer); flushing once per loop iteration sends a burst in one write.
"""

from __future__ import annotations

from functools import lru_cache

from aioapns.common import NotificationRequest, NotificationResult
from aioapns.connection import APNsTLSClientProtocol
from aioapns.exceptions import ConnectionClosed
from h2.connection import ConnectionState
from h2.exceptions import ProtocolError


@lru_cache(maxsize=8)
def tuned_protocol(base: type[APNsTLSClientProtocol]) -> type[APNsTLSClientProtocol]:
    """``base`` (an aioapns protocol class, gateway constants unchanged) with the fixes above."""
    return type(f"Tuned{base.__name__}", (_TunedProtocol, base), {})


class _TunedProtocol(APNsTLSClientProtocol):
    _flush_scheduled = False

    @property
    def is_closing(self) -> bool:
        transport = self.transport
        return (
            transport is None
            or transport.is_closing()
            or self.conn.state_machine.state is ConnectionState.CLOSED
        )

    @property
    def is_busy(self) -> bool:
        return self.is_closing or super().is_busy

    async def send_notification(self, request: NotificationRequest) -> NotificationResult:
        if self.is_closing:
            raise ConnectionClosed("connection is shutting down")
        try:
            return await super().send_notification(request)
        except ProtocolError as exc:
            raise ConnectionClosed(f"connection is shutting down: {exc}") from exc

    def flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_scheduled = False
        if self.transport is not None and not self.transport.is_closing():
            super().flush()
