"""A minimal blocking HTTP/2 client for poking the APNs stand-in with requests aioapns won't send.

Like aioapns it offers no ALPN, so it also checks that the stand-in speaks h2 without it.
"""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
from dataclasses import dataclass

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import DataReceived, ResponseReceived, StreamEnded, StreamReset

from mdmserver.testing.apns_pki import Identity


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def client_context(ca_pem: bytes, identity: Identity | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ca_pem.decode())
    if identity is not None:
        fd, path = tempfile.mkstemp(suffix=".pem")
        with os.fdopen(fd, "wb") as handle:
            handle.write(identity.cert_pem + identity.key_pem)
        try:
            context.load_cert_chain(path)
        finally:
            os.unlink(path)
    return context


def request(
    port: int,
    context: ssl.SSLContext,
    *,
    method: str = "POST",
    path: str,
    headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
    body: bytes = b"",
) -> Answer:
    """One request on a fresh connection; raises ssl/OS errors when the handshake fails."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        conn = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        stream_id = conn.get_next_available_stream_id()
        pseudo = [(":method", method), (":scheme", "https"), (":path", path)]
        pseudo.append((":authority", "127.0.0.1"))
        conn.send_headers(stream_id, pseudo + list(headers), end_stream=not body)
        if body:
            conn.send_data(stream_id, body, end_stream=True)
        tls.sendall(conn.data_to_send())
        status, response_headers, data = 0, {}, bytearray()
        while True:
            chunk = tls.recv(65536)
            if not chunk:
                raise ConnectionError("the stand-in closed the connection without answering")
            for event in conn.receive_data(chunk):
                if isinstance(event, ResponseReceived):
                    response_headers = dict(event.headers)  # type: ignore[arg-type]
                    status = int(response_headers[":status"])
                elif isinstance(event, DataReceived):
                    data += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                elif isinstance(event, StreamReset):
                    raise ConnectionError(f"stream reset: {event.error_code}")
                elif isinstance(event, StreamEnded):
                    return Answer(status, response_headers, bytes(data))
            tls.sendall(conn.data_to_send())
