"""Profile content as the API and CLI show it: the values of secret template variables
(``secret = true``, e.g. a PKCS#12 password) replaced by a fixed mark.

The server keeps the real content sealed (see mdmserver.crypto.sealed) to send it to devices;
what admins read back is this redacted copy, made when the profile is saved.
"""

from __future__ import annotations

import plistlib
from collections.abc import Sequence
from typing import Any

from mdmserver.profiles.builder import dumps

REDACTED = "********"


def redact(content: bytes, secrets: Sequence[str]) -> bytes:
    """`content` (an XML plist) with every occurrence of each secret in its strings replaced."""
    ordered = sorted({s for s in secrets if s}, key=len, reverse=True)  # longest first
    return dumps(_walk(plistlib.loads(content), ordered))


def _walk(value: Any, secrets: Sequence[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {key: _walk(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, secrets) for item in value]
    return value
