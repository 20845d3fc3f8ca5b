"""How the APNs stand-in judges a request: Apple's documented checks, and scripted answers.

Kept apart from the HTTP/2 plumbing so the checks read as a list of APNs rules. Statuses and
reasons follow Apple's "Handling notification responses from APNs" table; ``BadPayload`` (body is
not JSON) is the stand-in's own, since Apple documents no reason for it.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

# Largest error body the stand-in sends (with its 410 timestamp), with room to spare.
MAX_ERROR_BODY = 128
MAX_PAYLOAD = 4096  # bytes; Apple's limit for regular remote notifications

PUSH_TYPES = frozenset(
    {
        "alert",
        "background",
        "location",
        "voip",
        "complication",
        "fileprovider",
        "mdm",
        "liveactivity",
        "pushtotalk",
        "widgets",
        "controls",
    }
)
PRIORITIES = frozenset({"1", "5", "10"})
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+\Z")
_DEVICE_PREFIX = b"/3/device/"
_NOT_JSON = object()


@dataclass(frozen=True)
class ApnsRequest:
    """The parts of an HTTP/2 request APNs looks at."""

    method: bytes
    path: bytes
    token: str
    headers: dict[str, str]
    body: bytes
    client_topic: str | None
    duplicate_headers: bool

    @classmethod
    def parse(
        cls, raw_headers: list[tuple[bytes, bytes]], body: bytes, client_topic: str | None
    ) -> ApnsRequest:
        method = path = b""
        headers: dict[str, str] = {}
        duplicate = False
        for name, value in raw_headers:
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif not name.startswith(b":"):
                key = name.decode("latin-1")
                duplicate = duplicate or key in headers
                headers[key] = value.decode("latin-1")
        token = ""
        if path.startswith(_DEVICE_PREFIX):
            token = path[len(_DEVICE_PREFIX) :].decode("latin-1").lower()
        return cls(method, path, token, headers, body, client_topic, duplicate)

    @cached_property
    def decoded_body(self) -> Any:
        """The body as JSON (decoded once), or the not-JSON marker."""
        return _decode_json(self.body)

    @property
    def json(self) -> Any:
        """The body as JSON, or None when it is empty or not JSON."""
        value = self.decoded_body
        return None if value is _NOT_JSON else value


def validate(request: ApnsRequest) -> tuple[int, str | None]:
    """Apple's checks in roughly Apple's order: (200, None) or the first failure."""
    if request.method != b"POST":
        return 405, "MethodNotAllowed"
    if not request.path.startswith(_DEVICE_PREFIX) or b"?" in request.path:
        return 404, "BadPath"
    if not request.token:
        return 400, "MissingDeviceToken"
    if not _HEX.match(request.token):
        return 400, "BadDeviceToken"
    if request.duplicate_headers:
        return 400, "DuplicateHeaders"
    headers = request.headers
    apns_id = headers.get("apns-id")
    if apns_id is not None and not _UUID.match(apns_id):
        return 400, "BadMessageId"
    topic = headers.get("apns-topic")
    if not topic:
        # Apple falls back to a single-topic certificate's topic; the stand-in insists, so a
        # client that forgets the header is caught in tests.
        return 400, "MissingTopic"
    if topic != request.client_topic:
        return 400, "TopicDisallowed"
    push_type = headers.get("apns-push-type")
    if push_type is not None and push_type not in PUSH_TYPES:
        return 400, "InvalidPushType"
    priority = headers.get("apns-priority")
    if priority is not None and priority not in PRIORITIES:
        return 400, "BadPriority"
    expiration = headers.get("apns-expiration")
    if expiration is not None and not expiration.isdigit():
        return 400, "BadExpirationDate"
    collapse_id = headers.get("apns-collapse-id")
    if collapse_id is not None and len(collapse_id.encode()) > 64:
        return 400, "BadCollapseId"
    if not request.body:
        return 400, "PayloadEmpty"
    if len(request.body) > MAX_PAYLOAD:
        return 413, "PayloadTooLarge"
    if request.decoded_body is _NOT_JSON:
        return 400, "BadPayload"
    return 200, None


def error_body(status: int, reason: str | None) -> bytes:
    """The JSON APNs sends with a failure; a 410 also carries when the token went stale (ms)."""
    body: dict[str, object] = {"reason": reason or "Unknown"}
    if status == 410:
        body["timestamp"] = int(time.time() * 1000)
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass
class Rule:
    """A scripted answer for one token: always, or for the next ``remaining`` pushes."""

    status: int
    reason: str
    remaining: int | None

    @classmethod
    def create(cls, status: int, reason: str, times: int | None) -> Rule:
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"scripted status must be an int in 400..599, got {status!r}")
        if not isinstance(reason, str) or not reason:
            raise ValueError(f"scripted reason must be a non-empty string, got {reason!r}")
        if len(error_body(status, reason)) > MAX_ERROR_BODY:
            raise ValueError(f"scripted reason is too long: {reason!r}")
        if times is not None and (isinstance(times, bool) or not isinstance(times, int)):
            raise ValueError(f"times must be None or a positive int, got {times!r}")
        if times is not None and times < 1:
            raise ValueError(f"times must be None or a positive int, got {times!r}")
        return cls(status, reason, times)

    def use(self) -> bool:
        """Count one use; True when the rule is spent and should be forgotten."""
        if self.remaining is None:
            return False
        self.remaining -= 1
        return self.remaining <= 0


def _decode_json(body: bytes) -> Any:
    if not body:
        return _NOT_JSON
    try:
        return json.loads(body)
    except ValueError:
        return _NOT_JSON
