"""What to push to whom, and what a push's answer means for the server.

The reason sets follow Apple's APNs response table; the classification is the one decision the
rest of the server needs: forget the token, try again later, fix the certificate, or give up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_HEX_TOKEN = re.compile(r"(?:[0-9a-fA-F]{2}){1,200}\Z")
_HEADER_SAFE = re.compile(r"[\x21-\x7e]{1,255}\Z")

# Do not push to the token again until the device sends a new TokenUpdate.
STALE_TOKEN_REASONS = frozenset({"BadDeviceToken", "Unregistered", "ExpiredToken"})
# The push certificate or its topic is wrong: every device is affected, someone must act.
CERTIFICATE_REASONS = frozenset(
    {
        "BadCertificate",
        "BadCertificateEnvironment",
        "BadTopic",
        "DeviceTokenNotForTopic",
        "Forbidden",
        "TopicDisallowed",
    }
)
# Transient on Apple's side or ours.
RETRY_REASONS = frozenset(
    {"IdleTimeout", "InternalServerError", "ServiceUnavailable", "Shutdown", "TooManyRequests"}
)


class InvalidPushTarget(ValueError):
    """A push target whose token, PushMagic or topic cannot be sent to APNs."""


class OutcomeKind(StrEnum):
    DELIVERED = "delivered"
    STALE_TOKEN = "stale_token"
    RETRY = "retry"
    CERTIFICATE_ERROR = "certificate_error"
    REJECTED = "rejected"


@dataclass(frozen=True)
class PushTarget:
    """One device or user channel to wake: its token (hex), PushMagic and push topic."""

    token_hex: str
    push_magic: str
    topic: str

    def __post_init__(self) -> None:
        if not isinstance(self.token_hex, str) or not _HEX_TOKEN.match(self.token_hex):
            raise InvalidPushTarget(
                f"device token must be a non-empty even-length hex string, got {self.token_hex!r}"
            )
        if not isinstance(self.push_magic, str) or not self.push_magic:
            raise InvalidPushTarget(
                f"PushMagic must be a non-empty string, got {self.push_magic!r}"
            )
        if not isinstance(self.topic, str) or not _HEADER_SAFE.match(self.topic):
            raise InvalidPushTarget(f"push topic must be printable ASCII, got {self.topic!r}")


@dataclass(frozen=True)
class PushOutcome:
    """APNs' answer for one target (status/reason None when no answer came back)."""

    target: PushTarget
    status: int | None
    reason: str | None
    apns_id: str | None
    kind: OutcomeKind


def classify(status: int | None, reason: str | None) -> OutcomeKind:
    """Map an APNs status and reason to what the server should do next."""
    if status == 200:
        return OutcomeKind.DELIVERED
    if status is None:
        return OutcomeKind.RETRY
    if status == 410 or reason in STALE_TOKEN_REASONS:
        return OutcomeKind.STALE_TOKEN
    if status == 429 or status >= 500 or reason in RETRY_REASONS:
        return OutcomeKind.RETRY
    if status == 403 or reason in CERTIFICATE_REASONS:
        return OutcomeKind.CERTIFICATE_ERROR
    return OutcomeKind.REJECTED
