"""A local stand-in for APNs (MDM flavour): HTTP/2 over mutually authenticated TLS, on raw h2.

Built on the bare ``h2`` state machine because aioapns 4.0 cannot parse an empty DATA frame
(which common HTTP/2 servers send to end a response) and sends no ALPN, so the server must speak
h2 on any TLS connection. Answers follow Apple's documented statuses and reasons; responses can be
scripted per token to exercise a client's error handling and retries.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated, DataReceived, RequestReceived, StreamEnded, StreamReset
from h2.exceptions import ProtocolError, StreamClosedError
from h2.settings import SettingCodes, Settings

from mdmserver.push.hpack_plain import PlainEncoder
from mdmserver.testing.fake_apns_rules import (
    MAX_ERROR_BODY,
    ApnsRequest,
    Rule,
    error_body,
    validate,
)

log = logging.getLogger(__name__)

PushCallback = Callable[["PushRecord"], object]
_SLICE = 4096  # bytes of input handed to h2 at a time (about 18 pushes)
# Answers are written after every this many slices of input too, not only at the end of a read:
# a read can hold thousands of requests, and the client works through the first answers while
# the stand-in is still on the rest (each process has a core of its own to do it on).
_SLICES_PER_WRITE = 4


class FakeAPNsError(RuntimeError):
    """The stand-in could not start, or was used in the wrong state."""


@dataclass(frozen=True)
class PushRecord:
    """One request as the stand-in saw it, and what it answered."""

    token: str
    topic: str | None
    headers: dict[str, str]
    body: Any
    status: int
    reason: str | None
    apns_id: str
    client_topic: str | None
    received_at: float = field(default_factory=time.time)


class FakeAPNs:
    """APNs for MDM on 127.0.0.1, trusting client certificates issued by one CA only."""

    def __init__(
        self,
        *,
        ca_pem: bytes,
        cert_pem: bytes,
        key_pem: bytes,
        host: str = "127.0.0.1",
        port: int = 0,
        max_concurrent_streams: int = 1000,
        record: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.max_concurrent_streams = max_concurrent_streams
        self.record = record
        self.received: list[PushRecord] = []
        self._ssl = _server_context(ca_pem, cert_pem, key_pem)
        self._lock = threading.Condition()
        self._rules: dict[str, Rule] = {}
        self._push_listeners: dict[str, list[PushCallback]] = {}
        self._request_listeners: list[PushCallback] = []
        self._executor: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[_Connection] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeAPNs:
        """Serve from a background thread with its own event loop; return once listening."""
        if self._thread is not None:
            raise FakeAPNsError("FakeAPNs is already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._serve, args=(ready, failure), name="fake-apns", daemon=True
        )
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise FakeAPNsError(f"cannot listen on {self.host}:{self.port}") from failure[0]
        return self

    def stop(self) -> None:
        """Close every connection and the listener; idempotent."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __enter__(self) -> FakeAPNs:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- scripting and observing -------------------------------------------------------------

    def set_response(self, token: str, status: int, reason: str, times: int | None = None) -> None:
        """Answer pushes to ``token`` with ``status``/``reason`` (the next ``times`` ones only)."""
        rule = Rule.create(status, reason, times)
        with self._lock:
            self._rules[token.lower()] = rule

    def clear_response(self, token: str) -> None:
        """Let ``token`` be delivered normally again."""
        with self._lock:
            self._rules.pop(token.lower(), None)

    def on_push(self, token: str, callback: PushCallback) -> None:
        """Call ``callback(record)`` whenever a push to ``token`` is accepted (a device wakes)."""
        with self._lock:
            self._push_listeners.setdefault(token.lower(), []).append(callback)

    def on_request(self, callback: PushCallback) -> None:
        """Call ``callback(record)`` for every request answered, whatever the status."""
        with self._lock:
            self._request_listeners.append(callback)

    def wait_for(
        self,
        predicate_or_count: int | Callable[[list[PushRecord]], bool],
        timeout: float = 5.0,
    ) -> list[PushRecord]:
        """Block until ``count`` records exist or ``predicate(records)`` holds; return a copy."""
        if isinstance(predicate_or_count, bool) or not (
            isinstance(predicate_or_count, int) or callable(predicate_or_count)
        ):
            raise TypeError("wait_for expects a record count or a predicate over the records")
        if isinstance(predicate_or_count, int):
            count = predicate_or_count
            if count < 0:
                raise ValueError("wait_for count must be >= 0")

            def done() -> bool:
                return len(self.received) >= count
        else:
            predicate = predicate_or_count

            def done() -> bool:
                return bool(predicate(self.received))

        with self._lock:
            if not self._lock.wait_for(done, timeout):
                raise TimeoutError(
                    f"FakeAPNs: condition not met within {timeout}s "
                    f"({len(self.received)} requests received)"
                )
            return list(self.received)

    def clear(self) -> None:
        """Forget the requests received so far (scripted responses stay)."""
        with self._lock:
            self.received.clear()

    # -- request handling (loop thread) ------------------------------------------------------

    def _answer(self, request: ApnsRequest) -> tuple[int, str | None, str]:
        """Validate like APNs, apply a scripted response, record; return status, reason, id."""
        apns_id = request.headers.get("apns-id") or str(uuid.uuid4())
        status, reason = validate(request)
        with self._lock:
            if status == 200 and self._rules:
                rule = self._rules.get(request.token)
                if rule is not None:
                    status, reason = rule.status, rule.reason
                    if rule.use():
                        del self._rules[request.token]
            listeners = list(self._request_listeners)
            if status == 200 and self._push_listeners:
                listeners += self._push_listeners.get(request.token, ())
            if not self.record and not listeners:
                # Nobody looks at the record (scripts/fake_apns.py --quiet, benchmarks): no
                # need to build one per request.
                return status, reason, apns_id
            record = PushRecord(
                token=request.token,
                topic=request.headers.get("apns-topic"),
                headers=request.headers,
                body=request.json,
                status=status,
                reason=reason,
                apns_id=apns_id,
                client_topic=request.client_topic,
            )
            if self.record:
                self.received.append(record)
                self._lock.notify_all()
        if listeners:
            self._notify(listeners, record)
        return status, reason, apns_id

    def _notify(self, listeners: list[PushCallback], record: PushRecord) -> None:
        # Callbacks run off the loop thread so a slow "device" never stalls the push gateway.
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fake-apns-cb")
        for callback in listeners:
            self._executor.submit(callback, record).add_done_callback(_log_failure)

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            server = loop.run_until_complete(
                loop.create_server(lambda: _Connection(self), self.host, self.port, ssl=self._ssl)
            )
        except BaseException as exc:
            failure.append(exc)
            loop.close()
            ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            for connection in list(self._connections):
                connection.abort()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()


class _Connection(asyncio.Protocol):
    """One client connection: an h2 server state machine fed from the TLS transport."""

    def __init__(self, server: FakeAPNs) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.client_topic: str | None = None
        self.streams: dict[int, tuple[list[tuple[bytes, bytes]], bytearray]] = {}
        self.last_answered = 0
        # h2's optional per-header work is off: the request checks that matter are APNs' own
        # (fake_apns_rules.validate), and the stand-in's answers are two fixed-form headers.
        # HPACK without Huffman coding, as the push client encodes too (see hpack_plain).
        self.conn = H2Connection(
            H2Configuration(
                client_side=False,
                header_encoding=None,
                validate_inbound_headers=False,
                normalize_inbound_headers=False,
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        )
        self.conn.encoder = PlainEncoder(("apns-id",))
        self.conn.local_settings = Settings(
            client=False,
            initial_values={SettingCodes.MAX_CONCURRENT_STREAMS: server.max_concurrent_streams},
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server._connections.add(self)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        self.client_topic = _certificate_uid(der) if der else None
        self.conn.initiate_connection()
        transport.write(self.conn.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connections.discard(self)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        # h2 scans every open stream whenever a new one starts, so a large read holding hundreds
        # of requests costs O(n^2); small slices let each request be answered (and its stream
        # closed) before the next ones are opened.
        view = memoryview(data)
        for n, start in enumerate(range(0, len(view), _SLICE), 1):
            if not self._receive(view[start : start + _SLICE]):
                return
            if n % _SLICES_PER_WRITE == 0:
                self._flush()
        self._flush()

    def _receive(self, data: memoryview) -> bool:
        """Feed one slice to h2 and answer what completed; False once the connection is done."""
        conn = self.conn
        try:
            events = conn.receive_data(bytes(data))
        except ProtocolError as exc:
            log.warning("FakeAPNs: HTTP/2 protocol error from client: %s", exc)
            self._flush()
            self.transport.close()  # type: ignore[union-attr]
            return False
        for event in events:
            if isinstance(event, DataReceived):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream[1].extend(event.data)
                # Hand the window back at once: the payloads are tiny and already buffered.
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, RequestReceived):
                self.streams[event.stream_id] = (event.headers, bytearray())
            elif isinstance(event, StreamEnded):
                if not self._respond(event.stream_id):
                    return False
            elif isinstance(event, StreamReset):
                self.streams.pop(event.stream_id, None)
            elif isinstance(event, ConnectionTerminated):
                self._flush()
                self.transport.close()  # type: ignore[union-attr]
                return False
        return True

    def _respond(self, stream_id: int) -> bool:
        """Answer one finished request; False once the connection is being shut down."""
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return True
        conn = self.conn
        if conn.outbound_flow_control_window < MAX_ERROR_BODY:
            # aioapns never returns receive window, so after ~64 KiB of error bodies a
            # connection could carry no more; GOAWAY makes the client retry on a fresh one.
            conn.close_connection(ErrorCodes.NO_ERROR, last_stream_id=self.last_answered)
            self._flush()
            self.transport.close()  # type: ignore[union-attr]
            return False
        try:
            request = ApnsRequest.parse(stream[0], bytes(stream[1]), self.client_topic)
            status, reason, apns_id = self.server._answer(request)
        except Exception:
            log.exception("FakeAPNs: failed to handle stream %d", stream_id)
            status, reason, apns_id = 500, "InternalServerError", str(uuid.uuid4())
        headers = [(b":status", str(status).encode()), (b"apns-id", apns_id.encode())]
        try:
            if status == 200:
                conn.send_headers(stream_id, headers, end_stream=True)
            else:
                conn.send_headers(stream_id, [*headers, (b"content-type", b"application/json")])
                conn.send_data(stream_id, error_body(status, reason), end_stream=True)
        except StreamClosedError:
            return True  # the client gave up on this stream meanwhile
        self.last_answered = max(self.last_answered, stream_id)
        return True

    def _flush(self) -> None:
        out = self.conn.data_to_send()
        if out and self.transport is not None:
            self.transport.write(out)


def _server_context(ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """Mutual TLS like APNs: only client certificates from the configured CA get through."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])  # offered, never required: aioapns sends no ALPN
    try:
        context.load_verify_locations(cadata=ca_pem.decode("ascii"))
        fd, path = tempfile.mkstemp(suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(cert_pem + b"\n" + key_pem)
            context.load_cert_chain(path)
        finally:
            os.unlink(path)
    except (ssl.SSLError, AttributeError, TypeError, ValueError) as exc:
        raise ValueError(f"FakeAPNs: unusable CA, certificate or key PEM: {exc}") from exc
    return context


def _certificate_uid(der: bytes) -> str | None:
    """The subject UID of a DER certificate: for an MDM push certificate, its topic."""
    attributes = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.USER_ID)
    return str(attributes[0].value) if attributes else None


def _log_failure(future: Future[object]) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("FakeAPNs listener failed", exc_info=exc)
