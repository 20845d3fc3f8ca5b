"""Sealed secrets: AES-256-GCM bound to their purpose; a wrong key or purpose never opens."""

from __future__ import annotations

import pytest

from mdmserver.crypto.sealed import SealError, is_sealed, new_key, seal, unseal


def test_seal_round_trip_and_binding() -> None:
    key = new_key()
    blob = seal(key, b"p12-secret", b"profiles.content")
    assert is_sealed(blob) and b"p12-secret" not in blob
    assert unseal(key, blob, b"profiles.content") == b"p12-secret"
    assert seal(key, b"p12-secret", b"profiles.content") != blob  # a fresh nonce each time
    for wrong_key, purpose, data in (
        (new_key(), b"profiles.content", blob),
        (key, b"another.column", blob),
        (key, b"profiles.content", blob[:-1] + bytes([blob[-1] ^ 1])),
        (key, b"profiles.content", blob[:20]),
        (key, b"profiles.content", b"plain text"),
    ):
        with pytest.raises(SealError):
            unseal(wrong_key, data, purpose)
