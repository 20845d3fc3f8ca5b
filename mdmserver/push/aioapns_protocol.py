"""Fixes and speed-ups for aioapns 4.0's connection protocol, applied by subclassing.

- A GOAWAY (APNs sends one when it shuts a connection down, and the stand-in does when the
  client's receive window is spent) closes h2's state machine at once, but the connection stays
  in aioapns' pool until the socket is gone; a push handed to it meanwhile failed with h2's
  ProtocolError, which aioapns does not catch. Such a connection now reports itself busy, and a
  send on it raises aioapns' ConnectionClosed, which aioapns retries on another connection.
- aioapns flushes h2's buffer after every request (one TLS record and one syscall each, plus a
  re-armed inactivity timer); requests are now written once per loop iteration, or every
  FLUSH_EVERY requests within one, so APNs works on a burst's start while the rest is built.
- h2 is pure Python and costs most of the client's CPU per push. The connection is made with
  h2's header validation and normalisation off (aioapns builds well-formed headers, and
  PushTarget has already checked the token and topic that go into them; APNs' answers are two
  headers aioapns reads by name) and with an HPACK encoder that skips Huffman coding and keeps
  per-request values out of the table (see hpack_plain): HPACK alone was about 100 us a push.
- h2 walks all of a connection's streams whenever it opens one, so a connection reports itself
  busy at STREAMS_PER_CONNECTION requests in flight and aioapns' pool spreads the rest over
  more connections (PushClient opens enough for its max_in_flight).
- aioapns remembers every request's stream and forgets it only on an error answer: on a long
  lived connection that map grew by one entry per delivered push; it is now dropped when the
  stream ends (the error body, which needs it, arrives before the stream's end).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aioapns.common import NotificationRequest, NotificationResult
from aioapns.connection import APNsTLSClientProtocol
from aioapns.exceptions import ConnectionClosed
from h2.config import H2Configuration
from h2.connection import ConnectionState, H2Connection
from h2.exceptions import ProtocolError

from mdmserver.push.hpack_plain import PlainEncoder

# Requests written at the latest after this many (about one 16 KiB TLS record of them), so APNs
# starts on the first ones while the loop is still building the rest of a burst.
FLUSH_EVERY = 64
# Streams in flight on one connection before aioapns' pool is told it is busy and uses (or
# opens) another: h2 walks every stream of a connection each time it opens one, so a push on
# a connection with 512 open streams costs about twice what it costs with 128.
STREAMS_PER_CONNECTION = 128
# Per-request values: kept out of HPACK's dynamic table (see hpack_plain).
UNINDEXED_HEADERS = (":path", "apns-id")


def client_connection() -> H2Connection:
    """The h2 client state machine aioapns drives, without h2's optional per-header work."""
    conn = H2Connection(
        H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
            normalize_inbound_headers=False,
        )
    )
    conn.encoder = PlainEncoder(UNINDEXED_HEADERS)
    return conn


@lru_cache(maxsize=8)
def tuned_protocol(base: type[APNsTLSClientProtocol]) -> type[APNsTLSClientProtocol]:
    """``base`` (an aioapns protocol class, gateway constants unchanged) with the fixes above."""
    return type(f"Tuned{base.__name__}", (_TunedProtocol, base), {})


class _TunedProtocol(APNsTLSClientProtocol):
    _flush_scheduled = False
    _unflushed = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = client_connection()  # before connection_made: nothing was sent yet

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
        return (
            self.is_closing
            or len(self.request_streams) >= STREAMS_PER_CONNECTION
            or super().is_busy
        )

    async def send_notification(self, request: NotificationRequest) -> NotificationResult:
        if self.is_closing:
            raise ConnectionClosed("connection is shutting down")
        try:
            return await super().send_notification(request)
        except ProtocolError as exc:
            raise ConnectionClosed(f"connection is shutting down: {exc}") from exc

    def on_stream_ended(self, stream_id: int) -> None:
        self.request_streams.pop(stream_id, None)
        super().on_stream_ended(stream_id)

    def flush(self) -> None:
        self._unflushed += 1
        if self._unflushed >= FLUSH_EVERY:
            self._write()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_scheduled = False
        self._write()

    def _write(self) -> None:
        self._unflushed = 0
        if self.transport is not None and not self.transport.is_closing():
            super().flush()
