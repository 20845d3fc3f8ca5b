"""Webhook signatures: HMAC-SHA256 over the timestamp and the exact body.

``X-MDM-Timestamp: <unix seconds>`` and ``X-MDM-Signature: sha256=<hex>`` where the HMAC key is
the shared secret and the message is ``<timestamp>.<body bytes>``. Signing the timestamp with
the body lets a receiver refuse replays (an old timestamp) without trusting the header alone.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

SIGNATURE_HEADER = "X-MDM-Signature"
TIMESTAMP_HEADER = "X-MDM-Timestamp"
DEFAULT_TOLERANCE = 300  # seconds a receiver should accept a timestamp from now


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_headers(secret: bytes, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    lowered = {name.lower(): value for name, value in headers.items()}  # names are any case
    try:
        timestamp = int(lowered[TIMESTAMP_HEADER.lower()])
        given = lowered[SIGNATURE_HEADER.lower()]
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(given, sign(secret, timestamp, body))
