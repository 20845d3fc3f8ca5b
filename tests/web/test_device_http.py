"""The HTTP edges of the device endpoints, which are served in front of Flask (web/mdm.py):
methods, body framing and limits, request ids, and that everything else still reaches Flask."""

from __future__ import annotations

import dataclasses
import http.client
import socket
from urllib.parse import urlsplit

import pytest
import requests

from mdmserver.testing.http import drain, send


@pytest.fixture
def app_config(app_config):
    return dataclasses.replace(app_config, max_body_bytes=64 * 1024)


@pytest.fixture
def device(live_server, pki):
    device = pki.device()
    assert send(live_server, device.authenticate()).status_code == 200
    assert send(live_server, device.token_update()).status_code == 200
    drain(live_server, device)
    return device


def _raw(base_url: str, head: str) -> tuple[int, bytes]:
    """Send exactly this head: requests would fix up the framing these tests get wrong."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head.encode() + b"\r\n")
        response = http.client.HTTPResponse(sock, method="PUT")
        response.begin()
        return response.status, response.read()


@pytest.mark.parametrize("path", ["/mdm/checkin", "/mdm/connect"])
def test_other_methods_are_refused_with_allow(live_server, path):
    reply = requests.get(live_server + path, timeout=30)
    assert reply.status_code == 405
    assert reply.headers["Allow"] == "PUT"


def test_request_id_is_echoed_or_made(live_server, device):
    mine = send(live_server, device.token_update(), headers={"X-Request-ID": "trace-123"})
    assert mine.status_code == 200
    assert mine.headers["X-Request-ID"] == "trace-123"
    made = send(live_server, device.idle(), headers={"X-Request-ID": "x" * 65})
    assert len(made.headers["X-Request-ID"]) == 32  # too long to trust: a fresh uuid4 hex


def test_declared_length_over_the_cap_is_refused_before_reading(app, live_server, device):
    cap = app.config["MAX_CONTENT_LENGTH"]
    status, body = _raw(
        live_server,
        "PUT /mdm/connect HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-apple-aspen-mdm\r\n"
        f"Content-Length: {cap + 1}\r\nConnection: close\r\n",
    )
    assert status == 413
    assert b"larger" in body


def test_bad_content_length_is_a_400(live_server, device):
    status, body = _raw(
        live_server,
        "PUT /mdm/connect HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-apple-aspen-mdm\r\n"
        "Content-Length: 12abc\r\nConnection: close\r\n",
    )
    assert status == 400
    assert b"Content-Length" in body


def test_chunked_body_is_read(live_server, device):
    """A chunked upload (no Content-Length) is still read whole and verified."""
    request = device.idle()

    def chunks():
        yield request.body[:10]
        yield request.body[10:]

    reply = requests.put(
        live_server + request.path, data=chunks(), headers=request.headers, timeout=30
    )
    assert "Content-Length" not in reply.request.headers
    assert reply.status_code == 200, reply.text
    assert reply.content == b""  # nothing queued


def test_chunked_body_over_the_cap_is_refused(app, live_server, device):
    cap = app.config["MAX_CONTENT_LENGTH"]
    request = device.idle()

    def chunks():
        for _ in range(cap // 4096 + 1):
            yield b"<" * 4096

    reply = requests.put(
        live_server + request.path, data=chunks(), headers=request.headers, timeout=30
    )
    assert reply.status_code == 413
    assert "larger" in reply.text


def test_flask_routes_still_answer(live_server):
    assert requests.get(live_server + "/api/v1/devices", timeout=30).status_code == 401
    assert requests.get(live_server + "/no/such/path", timeout=30).status_code == 404
