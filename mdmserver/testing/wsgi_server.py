"""A threaded WSGI server on loopback for tests and benchmarks, from the standard library.

``http.server`` speaks HTTP/1.1 with keep-alive; this adds what a WSGI app needs from it: the
environ (``REMOTE_ADDR`` included, which device authentication checks against trusted
proxies), chunked request bodies (decoded, with ``wsgi.input_terminated`` set as servers that
support them do), and answers with a Content-Length or else the connection closed after them.
Not for production: ``mdmserver serve`` runs the server in ``mdmserver/server/``.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


class _Body:
    """``wsgi.input`` for a body of a declared length: reads no further than it."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream = stream
        self.left = length

    def read(self, size: int = -1) -> bytes:
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self._stream.read(size) if size else b""
        self.left -= len(data)
        return bytes(data)

    def readline(self, size: int = -1) -> bytes:
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self._stream.readline(size) if size else b""
        self.left -= len(data)
        return bytes(data)

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: WSGIApplication


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # An answer goes out as headers then body, two writes: with Nagle's algorithm on, the
    # body waits for the client's delayed ACK of the headers (40 ms on Linux) on every request.
    disable_nagle_algorithm = True
    server: _Server

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self._run()
            self.wfile.flush()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the app logs its own requests

    def _body(self) -> tuple[io.BufferedIOBase | _Body, bool]:
        """The request body as ``wsgi.input``, and whether it came chunked. A chunked body is
        decoded first; any other is read by the app as it asks (so an app can refuse a
        declared length before a byte of it is read, as the device endpoints do)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537).strip():  # trailers
                        pass
                    return io.BytesIO(b"".join(chunks)), True
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)  # the CRLF after each chunk
        declared = (self.headers.get("Content-Length") or "").strip()
        return _Body(self.rfile, int(declared) if declared.isdigit() else 0), False

    def _environ(self, body: io.BufferedIOBase | _Body, chunked: bool) -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": str(self.client_address[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": body,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if chunked:
            environ["wsgi.input_terminated"] = True
        else:  # as the client sent it: the app says what is wrong with a bad one
            environ["CONTENT_LENGTH"] = self.headers.get("Content-Length") or ""
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
                continue
            if key == "CONTENT_TYPE":
                environ[key] = value
                continue
            key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def _run(self) -> None:
        body, chunked = self._body()
        answer: dict[str, Any] = {}

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            answer["status"], answer["headers"] = status, headers
            return lambda data: None  # the legacy write() callable: unused by our apps

        result: Iterable[bytes] = self.server.app(self._environ(body, chunked), start_response)
        try:
            content = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        code, _, reason = answer["status"].partition(" ")
        self.send_response_only(int(code), reason)
        names = set()
        for name, value in answer["headers"]:
            names.add(name.lower())
            self.send_header(name, value)
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(content)))
        if "date" not in names:
            self.send_header("Date", self.date_time_string())
        if isinstance(body, _Body) and body.left:  # unread: the next request's start is lost
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)


@contextmanager
def serve_wsgi(app: WSGIApplication, host: str = "127.0.0.1") -> Iterator[int]:
    """Serve ``app`` on an ephemeral port of ``host`` from a thread; yields the port."""
    server = _Server((host, 0), _Handler)
    server.app = app
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="test-http")
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
