"""The push HPACK encoder: what the peer decodes is exactly what was sent, table changes and all."""

from __future__ import annotations

import secrets
import uuid

from hpack import Decoder

from mdmserver.push.hpack_plain import PlainEncoder


def _request(token: str) -> list[tuple[str, str]]:
    return [
        (":method", "POST"),
        (":scheme", "https"),
        (":path", f"/3/device/{token}"),
        ("host", "api.push.apple.com"),
        ("apns-id", str(uuid.uuid4())),
        ("apns-topic", "com.apple.mgmt.External.test"),
        ("apns-push-type", "mdm"),
    ]


def test_decodes_to_the_headers_sent_across_many_requests_and_table_changes() -> None:
    encoder, decoder = PlainEncoder((":path", "apns-id")), Decoder()
    for n in range(300):
        headers = _request(secrets.token_hex(32))
        if n % 37 == 5:  # a header that is new to the table shifts every dynamic index
            headers.append((f"x-extra-{n}", "v" * (n % 90)))
        if n == 150:  # the peer shrinks the table: a size update must lead the next block
            encoder.header_table_size = 256
        decoded = decoder.decode(encoder.encode(headers))
        assert decoded == headers


def test_per_request_values_stay_out_of_the_table_and_nothing_is_huffman_coded() -> None:
    encoder = PlainEncoder((":path", "apns-id"))
    first = _request("ab" * 32)
    encoder.encode(first)
    names = {name for name, _ in encoder.header_table.dynamic_entries}
    assert names == {b"host", b"apns-topic", b"apns-push-type"}
    block = encoder.encode(_request("cd" * 32))
    assert ("cd" * 32).encode() in block  # the token went out as plain bytes
    assert len(encoder.header_table.dynamic_entries) == 3
