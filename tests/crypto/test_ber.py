"""crypto/ber.py, the framing check in front of asn1crypto: BER from streaming senders comes
back as the DER they signed, and nothing but FramingError comes out of arbitrary bytes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st

from mdmserver.crypto import ber
from mdmserver.crypto.ca import PrivateKey
from mdmserver.crypto.cms_sign import sign_attached, sign_detached
from tests.fuzz.strategies import FUZZ, mutated

Identity = tuple[x509.Certificate, PrivateKey]


@pytest.mark.parametrize("chunk", [0, 7, 50], ids=["indefinite", "segments-7", "segments-50"])
def test_streamed_ber_comes_back_as_the_der_that_was_sent(
    device: Identity, to_ber: Callable[..., bytes], chunk: int
) -> None:
    cert, key = device
    for der in (sign_detached(b"body", cert, key), sign_attached(b"x" * 300, cert, key)):
        assert ber.check(der, 32) is False  # DER: nothing to rebuild
        streamed = to_ber(der, chunk)
        assert ber.check(streamed, 32) is True
        assert ber.to_definite(streamed) == der


def test_refuses_what_is_not_one_element_within_the_cap() -> None:
    for blob, reason in [
        (b"", "no data"),
        (b"\x30\x00\x05\x00", "trailing"),
        (b"\x30\x80\x05\x00", "truncated"),  # no end-of-contents
        (b"\x30\x03\x05\x00", "runs past"),
        (b"\x04\x80\x00\x00", "indefinite"),
        (b"\x1f\x81\x00\x00", "high tag"),
        (b"\x30\x85\x01\x00\x00\x00\x00", "length"),
        (b"\x30\x80" * 33 + b"\x00\x00" * 33, "deeper than 32"),
    ]:
        with pytest.raises(ber.FramingError, match=reason):
            ber.check(blob, 32)


def test_a_segment_of_an_octet_string_must_be_one() -> None:
    blob = b"\x24\x80\x04\x01a\x02\x01\x01\x00\x00"  # an INTEGER among the segments
    assert ber.check(blob, 32) is True
    with pytest.raises(ber.FramingError, match="segment"):
        ber.to_definite(blob)


@pytest.fixture(scope="module")
def streamed(device: Identity, to_ber: Callable[..., bytes]) -> bytes:
    """One BER signature, made once: the strategy below must draw from the same seed."""
    cert, key = device
    return to_ber(sign_detached(b"body", cert, key, digest="sha1"), 20)


@FUZZ
@given(data=st.data())
def test_arbitrary_bytes_give_a_verdict_or_a_framing_error(
    data: st.DataObject, streamed: bytes
) -> None:
    blob = data.draw(st.one_of(mutated(streamed), st.binary(max_size=200)))
    try:
        indefinite = ber.check(blob, 32)
        if indefinite:
            definite = ber.to_definite(blob)
            assert ber.check(definite, 32) is False
    except ber.FramingError:
        return
