"""A client for Apple's Apps and Books (VPP) service, ``https://vpp.itunes.apple.com/mdm/v2``.

Every call carries the organisation's content token (sToken) as ``Authorization: Bearer``.
Assigning and revoking licenses is asynchronous: ``assets/associate`` and
``assets/disassociate`` answer an ``eventId`` at once, and ``status?eventId=`` reports
``eventStatus`` (PENDING, then COMPLETE or FAILED) with ``numRequested``/``numCompleted`` and
the ``failures``. Apple answers 429 (and 503) with ``Retry-After`` when a caller is too fast;
the client waits as told, and backs off exponentially on network errors and other 5xx.
Refusals carry ``errorNumber``/``errorMessage``; :data:`ERRORS` words them for an admin.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from mdmserver.logs import get_logger

log = get_logger("apps.vpp")

DEFAULT_URL = "https://vpp.itunes.apple.com/mdm/v2"
EXPIRY_WARNING_DAYS = 30
PENDING = "PENDING"

# Apple's "Interpreting Error Codes" table, with what an admin should do where it helps.
ERRORS: dict[int, str] = {
    9600: "Missing required argument.",
    9601: "Login required.",
    9602: "Invalid argument.",
    9603: "Internal error at Apple; try again later.",
    9604: "Result not found.",
    9605: "Account storefront incorrect.",
    9606: "Error constructing token.",
    9607: "License is irrevocable.",
    9608: "Empty response from SharedData service.",
    9609: "Registered user not found.",
    9610: "License not found.",
    9611: "Admin user not found.",
    9612: "Failed to create claim job.",
    9613: "Failed to create unclaim job.",
    9614: "Invalid date format.",
    9615: "OrgCountry not found.",
    9616: "License already assigned.",
    9618: "The user has already been retired.",
    9619: "License not associated.",
    9620: "The user has already been deleted.",
    9621: (
        "The content token has expired: download a new one in Apple Business (or School) "
        "Manager and upload it (mdmserver apps vpp-token FILE)."
    ),
    9622: "Invalid authentication token: upload the content token again.",
    9623: "Invalid Apple push notification token.",
    9624: "License was refunded and is no longer valid.",
    9625: (
        "The content token has been revoked: download a new one in Apple Business (or School) "
        "Manager and upload it."
    ),
    9626: "License already assigned to a different user; retry with a different license.",
    9628: "Ineligible device assignment: this app cannot be assigned to a serial number.",
    9630: "Too many recent already-assigned errors: slow down assignments for this app.",
}
TOKEN_ERRORS = frozenset({9621, 9622, 9625})


class VppError(Exception):
    """Apple refused a request; ``number`` is Apple's errorNumber (None for HTTP-only)."""

    def __init__(self, status: int, number: int | None, message: str) -> None:
        self.status = status
        self.number = number
        self.message = message
        super().__init__(describe_error(number, message))

    @property
    def token_problem(self) -> bool:
        return self.number in TOKEN_ERRORS


class VppUnavailable(VppError):
    """Apple could not be reached or kept failing after every retry."""


class RateLimited(VppError):
    """Apple asked us to wait longer than this client is willing to block for."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(429, None, f"rate-limited by Apple: retry after {retry_after:.0f}s")


def describe_error(number: int | None, message: str) -> str:
    if number is None:
        return message
    known = ERRORS.get(number)
    return f"Apps and Books error {number}: {known or message}"


# The content token -------------------------------------------------------------------------


class TokenError(ValueError):
    """The uploaded file is not an Apps and Books content token."""


@dataclass(frozen=True, slots=True)
class ContentToken:
    """An sToken as downloaded from Apple Business/School Manager (a ``.vpptoken`` file):
    base64 of a JSON object with the secret ``token``, ``expDate`` and ``orgName``. The
    whole base64 text is the Bearer credential."""

    raw: str
    org_name: str
    expires_at: datetime

    def days_left(self, now: datetime | None = None) -> int:
        return (self.expires_at - (now or datetime.now(UTC))).days

    def __repr__(self) -> str:  # never print the secret
        return f"ContentToken(org_name={self.org_name!r}, expires_at={self.expires_at:%Y-%m-%d})"


def parse_token(data: bytes | str) -> ContentToken:
    text = (data.decode("ascii", "replace") if isinstance(data, bytes) else data).strip()
    if not text or len(text) > 16384:
        raise TokenError("the content token is empty or too large")
    try:
        fields = json.loads(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        raise TokenError("not a content token: expected base64 of a JSON object") from None
    if not isinstance(fields, dict) or not isinstance(fields.get("token"), str):
        raise TokenError("not a content token: no 'token' field")
    expires = parse_apple_time(fields.get("expDate"))
    if expires is None:
        raise TokenError("the content token has no readable 'expDate'")
    org = fields.get("orgName")
    return ContentToken(text, org if isinstance(org, str) else "", expires)


def parse_apple_time(value: Any) -> datetime | None:
    """Apple writes ``2030-11-08T22:33:22+0000``."""
    if not isinstance(value, str):
        return None
    for pattern in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return datetime.strptime(value, pattern).astimezone(UTC)
        except ValueError:
            continue
    return None


# The client --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventStatus:
    event_id: str
    status: str
    event_type: str | None
    num_requested: int | None
    num_completed: int | None
    failures: list[dict[str, Any]]

    @property
    def done(self) -> bool:
        return self.status != PENDING


class VppClient:
    def __init__(
        self,
        token: ContentToken | str,
        base_url: str = DEFAULT_URL,
        *,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff_seconds: float = 1.0,
        max_retry_after: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bearer = token.raw if isinstance(token, ContentToken) else token
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_retry_after = max_retry_after
        self.sleep = sleep

    # Endpoints ----------------------------------------------------------------------------

    def client_config(self) -> dict[str, Any]:
        return self._call("GET", "/client/config")

    def assets(self, adam_id: str | None = None) -> list[dict[str, Any]]:
        params = {"adamId": adam_id} if adam_id else {}
        return list(self._pages("/assets", "assets", params))

    def assignments(
        self, *, adam_id: str | None = None, serial_number: str | None = None
    ) -> list[dict[str, Any]]:
        params = {
            key: value
            for key, value in (("adamId", adam_id), ("serialNumber", serial_number))
            if value
        }
        return list(self._pages("/assignments", "assignments", params))

    def associate(self, assets: Sequence[tuple[str, str]], serials: Iterable[str]) -> str:
        """Assign licenses of each (adamId, pricingParam) to the serials; the eventId."""
        return self._manage("/assets/associate", assets, serials)

    def disassociate(self, assets: Sequence[tuple[str, str]], serials: Iterable[str]) -> str:
        """Revoke those licenses from the serials (they return to the pool); the eventId."""
        return self._manage("/assets/disassociate", assets, serials)

    def event_status(self, event_id: str) -> EventStatus:
        body = self._call("GET", "/status", params={"eventId": event_id})
        return EventStatus(
            event_id=event_id,
            status=str(body.get("eventStatus", PENDING)),
            event_type=body.get("eventType"),
            num_requested=body.get("numRequested"),
            num_completed=body.get("numCompleted"),
            failures=list(body.get("failures") or []),
        )

    def wait_event(
        self,
        event_id: str,
        *,
        timeout: float = 60.0,
        poll_seconds: float = 1.0,
        progress: Callable[[EventStatus], None] | None = None,
    ) -> EventStatus:
        """Poll the event until it leaves PENDING, or ``timeout`` seconds pass (then the last
        status, still PENDING, is returned: the caller follows it later)."""
        deadline = time.monotonic() + timeout
        delay = poll_seconds
        while True:
            status = self.event_status(event_id)
            if progress is not None:
                progress(status)
            if status.done or time.monotonic() + delay > deadline:
                return status
            self.sleep(delay)
            delay = min(delay * 2, 30.0)

    # Transport ----------------------------------------------------------------------------

    def _manage(self, path: str, assets: Sequence[tuple[str, str]], serials: Iterable[str]) -> str:
        body = {
            "assets": [{"adamId": adam, "pricingParam": price} for adam, price in assets],
            "serialNumbers": list(serials),
        }
        answer = self._call("POST", path, json_body=body)
        event_id = answer.get("eventId")
        if not isinstance(event_id, str) or not event_id:
            raise VppError(200, None, f"Apple's answer to {path} carries no eventId")
        return event_id

    def _pages(self, path: str, key: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        page = 0
        while True:
            body = self._call("GET", path, params={**params, "pageIndex": str(page)})
            yield from body.get(key) or []
            total = body.get("totalPages")
            page += 1
            if not isinstance(total, int) or page >= total:
                return

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> dict[str, Any]:
        url = self.base_url + path
        headers = {"Authorization": f"Bearer {self.bearer}", "Accept": "application/json"}
        last: VppError | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                reply = self.session.request(
                    method, url, params=params, json=json_body, headers=headers,
                    timeout=self.timeout,
                )  # fmt: skip
            except requests.RequestException as exc:
                last = VppUnavailable(0, None, f"Apple's Apps and Books service: {exc}")
                wait = self._backoff(attempt)
            else:
                if reply.status_code < 300:
                    return _json(reply)
                if reply.status_code in (429, 503):
                    wait = retry_after(reply.headers.get("Retry-After"), self._backoff(attempt))
                    if wait > self.max_retry_after:
                        raise RateLimited(wait)
                    last = RateLimited(wait)
                elif reply.status_code >= 500:
                    last = VppUnavailable(reply.status_code, *_error_fields(reply))
                    wait = self._backoff(attempt)
                else:
                    raise VppError(reply.status_code, *_error_fields(reply))
            if attempt == self.max_attempts:
                break
            log.info(
                "vpp_retry",
                extra={"fields": {"path": path, "attempt": attempt, "wait": round(wait, 3),
                                  "reason": str(last)}},
            )  # fmt: skip
            self.sleep(wait)
        assert last is not None
        raise last

    def _backoff(self, attempt: int) -> float:
        return float(self.backoff_seconds * 2 ** (attempt - 1))


def retry_after(header: str | None, default: float) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not header:
        return default
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _json(reply: requests.Response) -> dict[str, Any]:
    try:
        body = reply.json()
    except ValueError:
        raise VppError(
            reply.status_code, None, "Apple answered with a body that is not JSON"
        ) from None
    if not isinstance(body, dict):
        raise VppError(reply.status_code, None, "Apple answered with JSON that is not an object")
    if "errorNumber" in body:  # Apple reports some refusals with a 200
        raise VppError(reply.status_code, *_error_fields(reply))
    return body


def _error_fields(reply: requests.Response) -> tuple[int | None, str]:
    try:
        body = reply.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        number = body.get("errorNumber")
        message = body.get("errorMessage") or f"HTTP {reply.status_code}"
        return (number if isinstance(number, int) else None), str(message)
    return None, f"HTTP {reply.status_code} from Apple's Apps and Books service"
