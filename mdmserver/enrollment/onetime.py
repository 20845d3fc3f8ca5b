"""One-time secrets (enrollment tokens, SCEP challenges): made here, stored only as hashes."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

_DURATION = re.compile(r"(\d+)([wdhm])")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}


def new_secret() -> str:
    """256 bits, URL-safe: it travels in a query string (tokens) or a CSR (challenges)."""
    return secrets.token_urlsafe(32)


def new_token_id() -> str:
    """The short public id an administrator uses to list or revoke a token."""
    return secrets.token_hex(4)


def secret_hash(secret: str) -> str:
    """What the database keeps instead of the secret; SHA-256 suffices for 256-bit secrets."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_duration(text: str) -> timedelta:
    """'7d', '12h', '30m', '2w' or combinations such as '1d12h'."""
    value = text.strip().lower()
    parts = _DURATION.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"{text!r} is not a duration such as 7d, 12h or 30m")
    total = timedelta()
    try:
        for number, unit in parts:
            total += timedelta(**{_UNITS[unit]: int(number)})
    except OverflowError:
        raise ValueError(f"duration {text!r} is too long") from None
    if total <= timedelta(0):
        raise ValueError(f"duration {text!r} must be longer than zero")
    return total
