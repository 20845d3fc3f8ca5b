"""Sealing secrets for storage: AES-256-GCM under a key the instance keeps beside its CA key.

A sealed value is ``PREFIX || nonce (12 bytes) || ciphertext+tag`` and is bound to what it is
for (the associated data, e.g. ``b"profiles.content"``), so a sealed value copied into another
column does not open there. The prefix makes a sealed value recognisable, so rows written
before sealing existed still read as they are.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = b"mdmsealed:1:"
KEY_BYTES = 32
_NONCE_BYTES = 12


class SealError(ValueError):
    """A sealed value that does not open with this key (wrong key, altered, or truncated)."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def is_sealed(blob: bytes) -> bool:
    return blob.startswith(PREFIX)


def seal(key: bytes, plaintext: bytes, purpose: bytes) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return PREFIX + nonce + AESGCM(key).encrypt(nonce, plaintext, purpose)


def unseal(key: bytes, blob: bytes, purpose: bytes) -> bytes:
    if not is_sealed(blob) or len(blob) < len(PREFIX) + _NONCE_BYTES + 16:
        raise SealError("not a sealed value")
    nonce = blob[len(PREFIX) : len(PREFIX) + _NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, blob[len(PREFIX) + _NONCE_BYTES :], purpose)
    except InvalidTag:
        raise SealError("a sealed value does not open with this instance's secrets key") from None
