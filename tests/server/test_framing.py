"""Requests the server must read one way only (RFC 9112): refused with a 4xx before the app,
and the ordinary framings (chunked bodies, keep-alive, pipelining) served."""

from __future__ import annotations

from tests.server.test_slow_clients import raw_request


def test_ambiguous_framing_is_refused_and_chunked_bodies_are_read(start_server):
    served = start_server("procfile", workers=1)
    both = raw_request(
        served,
        b"PUT /mdm/connect HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    assert both.startswith(b"HTTP/1.1 400") and b"both Content-Length and Transfer" in both
    twice = raw_request(
        served,
        b"PUT /mdm/connect HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
    )
    assert twice.startswith(b"HTTP/1.1 400") and b"conflicting Content-Length" in twice
    coding = raw_request(
        served, b"PUT /mdm/connect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
    )
    assert coding.startswith(b"HTTP/1.1 501")
    folded = raw_request(served, b"GET / HTTP/1.1\r\nHost: x\r\n folded: value\r\n\r\n")
    assert folded.startswith(b"HTTP/1.1 400") and b"malformed header line" in folded
    too_big = raw_request(
        served, b"PUT /mdm/connect HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n"
    )
    assert too_big.startswith(b"HTTP/1.1 413")
    # A chunked body reaches the app whole (it refuses this unsigned one by its signature),
    # and two pipelined requests on one connection get their two answers in order.
    chunked = raw_request(
        served,
        b"PUT /mdm/connect HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-apple-aspen-mdm\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\n<pl\r\n5\r\nist/>\r\n0\r\n\r\n"
        b"GET /scep?operation=GetCACaps HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    first, _, second = chunked.partition(b"\r\n\r\nmissing Mdm-Signature header")
    assert first.startswith(b"HTTP/1.1 400"), chunked[:300]
    assert b"HTTP/1.1 200" in second and b"POSTPKIOperation" in second
