"""One HTTP/1.1 connection: read a whole request under timeouts, then run it on a WSGI thread.

The states of a connection, each with its own clock:

- TLS handshake and request head: ``header_timeout`` from the connection's start (or from the
  first byte of a later request on a kept-alive connection);
- request body: ``body_timeout`` from the end of the head;
- between requests: ``keepalive_timeout``;
- busy: the app runs on one of the worker's threads; reading is paused meanwhile.

A request the server cannot frame (a malformed line, both Content-Length and Transfer-Encoding,
a head or body over its limit) is answered with a plain-text 4xx and the connection closed:
after a framing error nothing that follows on the connection can be trusted.
"""

from __future__ import annotations

import asyncio
import io
import re
import ssl
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote_to_bytes

from mdmserver.logs import get_logger
from mdmserver.server.addresses import AddressTable

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

log = get_logger("server")

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}\Z")
_CHUNK_LINE_LIMIT = 1024
# Hop-by-hop headers are this server's business, not the app's.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


@dataclass(frozen=True)
class Limits:
    """The bounds every connection is held to (settings ``http_*`` in config.py)."""

    header_timeout: float = 10.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 30.0
    max_header_bytes: int = 64 * 1024
    max_body_bytes: int = 16 * 1024 * 1024


class Refused(Exception):
    """A request this server answers itself, and then closes the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Request:
    method: str
    target: bytes
    version: str
    headers: list[tuple[str, str]]
    keep_alive: bool


class Worker:
    """What the connections of one worker process share: the app, its threads, the limits."""

    def __init__(
        self,
        app: WSGIApplication,
        limits: Limits,
        executor: Executor,
        addresses: AddressTable,
        tls: ssl.SSLContext | None,
        server_port: int,
        multiprocess: bool,
    ) -> None:
        self.app = app
        self.limits = limits
        self.executor = executor
        self.addresses = addresses
        self.tls = tls
        self.server_port = server_port
        self.multiprocess = multiprocess
        self.connections: set[Connection] = set()
        self.closing = False
        self._refused_logged = 0.0

    def refused_connection(self, address: str) -> None:
        now = time.monotonic()
        if now - self._refused_logged > 10:  # a flood must not flood the log as well
            self._refused_logged = now
            log.warning(
                "connection_refused",
                extra={
                    "fields": {
                        "client": address,
                        "reason": "too many open connections from this address",
                        "limit": self.addresses.limit,
                    }
                },
            )

    def shutdown(self) -> None:
        """Stop taking requests: idle connections close now, busy ones after their answer."""
        self.closing = True
        for connection in list(self.connections):
            connection.close_if_idle()


class Connection(asyncio.Protocol):
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.limits = worker.limits
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.raw: asyncio.Transport | None = None  # the TCP transport under TLS
        self.buffer = bytearray()
        self.scanned = 0  # how much of the buffer was searched for the end of the head
        self.state = "handshake"
        self.timer: asyncio.TimerHandle | None = None
        self.address = ""
        self.peer_port = 0
        self.counted = False
        self.closed = False
        self.request: Request | None = None
        self.body_length = 0
        self.chunked: ChunkedBody | None = None

    # -- connection lifecycle --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # a stream server's (uvloop's or not)
        peer = transport.get_extra_info("peername") or ("", 0)
        self.address, self.peer_port = str(peer[0]), int(peer[1])
        if not self.worker.addresses.acquire(self.address):
            self.worker.refused_connection(self.address)
            self.closed = True
            transport.abort()
            return
        self.counted = True
        self.raw = transport
        self.worker.connections.add(self)
        self._arm(self.limits.header_timeout, self._handshake_or_head_timeout)
        if self.worker.tls is None:
            self.transport = transport
            self.state = "head"
            return
        transport.pause_reading()  # not a byte to us before the handshake has happened
        self.loop.create_task(self._start_tls(transport, self.worker.tls))

    async def _start_tls(self, raw: asyncio.Transport, context: ssl.SSLContext) -> None:
        try:
            secure = await self.loop.start_tls(
                raw,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=self.limits.header_timeout,
            )
        except (TimeoutError, OSError, ssl.SSLError):
            raw.abort()
            self._forget()
            return
        if secure is None or self.closed:
            raw.abort()
            self._forget()
            return
        self.transport = secure
        self.state = "head"
        if self.buffer:
            self._advance()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()

    def _forget(self) -> None:
        """Once per connection: stop its clock and uncount it."""
        self.closed = True
        self._disarm()
        if self.counted:
            self.counted = False
            self.worker.addresses.release(self.address)
            self.worker.connections.discard(self)

    def close_if_idle(self) -> None:
        if self.state in {"idle", "handshake"} or (self.state == "head" and not self.buffer):
            self._abort()

    def _abort(self) -> None:
        for transport in (self.transport, self.raw):
            if transport is not None:
                transport.abort()
        self._forget()

    # -- clocks ----------------------------------------------------------------------------

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self.timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _handshake_or_head_timeout(self) -> None:
        if self.state == "head" and self.buffer:
            self._refuse(Refused(408, "the request headers did not arrive in time"))
        else:
            self._abort()

    def _body_timeout(self) -> None:
        self._refuse(Refused(408, "the request body did not arrive in time"))

    def pause_writing(self) -> None:
        # A client that does not read its answer gets as long as one that does not send.
        self._arm(self.limits.body_timeout, self._abort)

    def resume_writing(self) -> None:
        if self.state == "idle":
            self._arm(self.limits.keepalive_timeout, self._abort)

    # -- reading ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.state == "idle":
            self.state = "head"
            self._arm(self.limits.header_timeout, self._handshake_or_head_timeout)
        if self.state in {"head", "body"}:
            self._advance()

    def _advance(self) -> None:
        try:
            if self.state == "head" and not self._read_head():
                return
            if self.state == "body" and not self._read_body():
                return
        except Refused as refusal:
            self._refuse(refusal)
            return
        self._dispatch()

    def _read_head(self) -> bool:
        # Search only what is new (a head sent a byte at a time must not cost O(n²)).
        end = self.buffer.find(b"\r\n\r\n", max(0, self.scanned - 3))
        if end < 0 or end + 4 > self.limits.max_header_bytes:
            if len(self.buffer) > self.limits.max_header_bytes or end >= 0:
                raise Refused(
                    431, "the request line and headers are larger than this server accepts"
                )
            self.scanned = len(self.buffer)
            return False
        self.scanned = 0
        head = bytes(self.buffer[:end])
        del self.buffer[: end + 4]
        request = parse_head(head.lstrip(b"\r\n"))
        self.request = request
        self.body_length, self.chunked = body_framing(request, self.limits.max_body_bytes)
        if self.body_length or self.chunked:
            if _header(request.headers, "expect").lower() == "100-continue":
                self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.state = "body"
            self._arm(self.limits.body_timeout, self._body_timeout)
        return True

    def _read_body(self) -> bool:
        if self.chunked is not None:
            return self.chunked.feed(self.buffer)
        return len(self.buffer) >= self.body_length

    def _take_body(self) -> bytes:
        if self.chunked is not None:
            body = bytes(self.chunked.body)
            self.chunked = None
            return body
        body = bytes(self.buffer[: self.body_length])
        del self.buffer[: self.body_length]
        return body

    # -- the app ---------------------------------------------------------------------------

    def _dispatch(self) -> None:
        assert self.request is not None and self.transport is not None
        request, body = self.request, self._take_body()
        self.state = "busy"
        self._disarm()
        self.transport.pause_reading()
        environ = self._environ(request, body)
        future = self.loop.run_in_executor(
            self.worker.executor, call_app, self.worker.app, environ, request
        )
        future.add_done_callback(self._answered)

    def _answered(self, future: asyncio.Future[tuple[bytes, bool]]) -> None:
        if self.closed or self.transport is None:
            return
        if future.cancelled():  # the worker is stopping
            self._abort()
            return
        answer, keep_alive = future.result()
        keep_alive = keep_alive and not self.worker.closing
        self._write(answer)
        self.request = None
        if not keep_alive:
            self.state = "closing"
            self.transport.close()  # after the answer is out; a client that never reads it
            self._arm(self.limits.body_timeout, self._abort)  # is cut off like a slow sender
            return
        self.state = "idle"
        self._arm(self.limits.keepalive_timeout, self._abort)
        self.transport.resume_reading()
        if self.buffer:  # a pipelined request arrived while this one ran
            self.state = "head"
            self._arm(self.limits.header_timeout, self._handshake_or_head_timeout)
            self._advance()

    def _environ(self, request: Request, body: bytes) -> WSGIEnvironment:
        path, _, query = request.target.partition(b"?")
        if path.startswith((b"http://", b"https://")):  # absolute form: keep the path
            path = b"/" + path.split(b"/", 3)[3] if path.count(b"/") >= 3 else b"/"
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query.decode("latin-1"),
            "SERVER_NAME": _host_name(_header(request.headers, "host")),
            "SERVER_PORT": str(self.worker.server_port),
            "SERVER_PROTOCOL": request.version,
            "REMOTE_ADDR": self.address,
            "REMOTE_PORT": str(self.peer_port),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if self.worker.tls is not None else "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": self.worker.multiprocess,
            "wsgi.run_once": False,
        }
        if body or request.method in {"POST", "PUT", "PATCH"}:
            environ["CONTENT_LENGTH"] = str(len(body))
        for name, value in request.headers:
            if "_" in name:  # X_Foo and X-Foo would be one CGI name: drop the ambiguous form
                continue
            key = name.upper().replace("-", "_")
            if key == "CONTENT_LENGTH":
                continue  # the body's real length, set above
            if key != "CONTENT_TYPE":
                key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    # -- writing ---------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _refuse(self, refusal: Refused) -> None:
        log.info(
            "request_refused",
            extra={
                "fields": {
                    "client": self.address,
                    "status": refusal.status,
                    "reason": refusal.message,
                }
            },
        )
        self._write(plain_answer(refusal.status, refusal.message, keep_alive=False))
        self.state = "closing"
        if self.transport is not None:
            self.transport.close()
        self._arm(5, self._abort)  # close() waits for the answer to drain; not forever


def parse_head(head: bytes) -> Request:
    """The request line and headers (RFC 9112), refusing what could be read two ways."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1]:
        raise Refused(400, "malformed request line")
    method, target, version = parts
    if version not in {b"HTTP/1.1", b"HTTP/1.0"}:
        raise Refused(505, "this server speaks HTTP/1.1 and HTTP/1.0")
    if not (target.startswith((b"/", b"http://", b"https://")) or target == b"*"):
        raise Refused(400, "malformed request target")
    if any(byte < 0x21 or byte == 0x7F for byte in target):
        raise Refused(400, "malformed request target")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.match(name):
            raise Refused(400, "malformed header line")
        value = value.strip(b" \t")
        if b"\n" in value or b"\r" in value or b"\0" in value:
            raise Refused(400, "header values may not contain CR, LF or NUL")
        headers.append((name.decode("ascii"), value.decode("latin-1")))
    connection = {
        token.strip().lower() for token in _header(headers, "connection").split(",") if token
    }
    keep_alive = (
        ("close" not in connection) if version == b"HTTP/1.1" else "keep-alive" in connection
    )
    return Request(method.decode("ascii"), target, version.decode("ascii"), headers, keep_alive)


def body_framing(request: Request, limit: int) -> tuple[int, ChunkedBody | None]:
    """How the body is delimited: (Content-Length, None) or (0, a chunked decoder)."""
    lengths = {value.strip() for name, value in request.headers if name.lower() == "content-length"}
    codings = [value for name, value in request.headers if name.lower() == "transfer-encoding"]
    if codings:
        if lengths:
            raise Refused(400, "a request may not have both Content-Length and Transfer-Encoding")
        if request.version == "HTTP/1.0":
            raise Refused(400, "Transfer-Encoding is not allowed in HTTP/1.0")
        if ",".join(codings).strip().lower() != "chunked":
            raise Refused(501, "the only transfer coding this server accepts is chunked")
        return 0, ChunkedBody(limit)
    if not lengths:
        return 0, None
    if len(lengths) > 1:
        raise Refused(400, "conflicting Content-Length headers")
    declared = lengths.pop()
    if not declared.isdigit() or not declared.isascii():
        raise Refused(400, f"Content-Length is not a number: {declared[:40]!r}")
    length = int(declared)
    if length > limit:
        raise Refused(413, "request body is larger than this server accepts")
    return length, None


class ChunkedBody:
    """An incremental decoder of the chunked transfer coding, bounded like a plain body."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.body = bytearray()
        self.state = "size"
        self.remaining = 0

    def feed(self, buffer: bytearray) -> bool:
        """Consume what ``buffer`` holds; True once the last chunk and trailers are in."""
        while True:
            if self.state == "data":
                take = min(self.remaining, len(buffer))
                self.body += buffer[:take]
                del buffer[:take]
                self.remaining -= take
                if self.remaining:
                    return False
                self.state = "data-end"
            end = buffer.find(b"\r\n")
            if end < 0:
                if len(buffer) > _CHUNK_LINE_LIMIT:
                    raise Refused(400, "malformed chunked body")
                return False
            line = bytes(buffer[:end])
            del buffer[: end + 2]
            if self.state == "data-end":
                if line:
                    raise Refused(400, "malformed chunked body")
                self.state = "size"
            elif self.state == "size":
                size = line.split(b";", 1)[0].strip()
                if not _HEX.match(size):
                    raise Refused(400, "malformed chunk size")
                self.remaining = int(size, 16)
                if len(self.body) + self.remaining > self.limit:
                    raise Refused(413, "request body is larger than this server accepts")
                self.state = "data" if self.remaining else "trailers"
            elif not line:  # the blank line after the trailers (which are ignored)
                return True


def call_app(
    app: WSGIApplication, environ: WSGIEnvironment, request: Request
) -> tuple[bytes, bool]:
    """On a WSGI thread: run the app to its last byte; the whole answer and keep-alive."""
    started: list[Any] = []
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started[:] = [status, headers]
        return chunks.append

    try:
        result: Iterable[bytes] = app(environ, start_response)
        try:
            chunks.extend(chunk for chunk in result if chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    except Exception:
        log.exception("app_failed", extra={"fields": {"path": environ.get("PATH_INFO", "")}})
        return plain_answer(500, "internal error", keep_alive=False), False
    if not started:
        log.error("app_did_not_start_response")
        return plain_answer(500, "internal error", keep_alive=False), False
    status, headers = started
    body = b"".join(chunks)
    keep_alive = request.keep_alive
    lines = [f"HTTP/1.1 {status}"]
    declared = None
    for name, value in headers:
        lower = name.lower()
        if lower == "content-length":
            declared = value
        if lower not in _HOP_BY_HOP:
            lines.append(f"{name}: {value}")
    code = int(status[:3])
    if request.method == "HEAD":
        body = b""
        if declared is not None:
            lines.append(f"Content-Length: {declared}")
    elif code >= 200 and code not in {204, 304}:
        lines.append(f"Content-Length: {len(body)}")
    lines.append(f"Date: {http_date()}")
    if not keep_alive:
        lines.append("Connection: close")
    elif request.version == "HTTP/1.0":
        lines.append("Connection: keep-alive")
    head = "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n"
    return head + body, keep_alive


def plain_answer(status: int, message: str, keep_alive: bool) -> bytes:
    body = (message + "\n").encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Date: {http_date()}\r\n"
    )
    if not keep_alive:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


def _host_name(host: str) -> str:
    """The name in a Host header, without its port ("[::1]:8443" is "[::1]")."""
    colon = host.rfind(":")
    return (host[:colon] if colon > host.rfind("]") else host) or "localhost"


def _header(headers: list[tuple[str, str]], name: str) -> str:
    return ",".join(value for key, value in headers if key.lower() == name)
