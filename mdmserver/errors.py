"""The kinds of refusal every layer shares, and the one table from a kind to its HTTP status.

Domain code (services, stores, validators) raises a :class:`DomainError` of the kind that
says what went wrong — the input is invalid, the thing is not found, it conflicts with what
exists — and knows nothing of HTTP. The web layer (``mdmserver/web/errors.py``) answers every
one of them through :data:`HTTP_STATUS`, for the Flask routes and the bare-WSGI device
endpoints alike; the audit trail quotes the same status ("refused 404: ..."), which is why
the table lives here, below both, and not in the web layer.

Anything that is not a DomainError is a bug, and answers 500.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Any


class Kind(StrEnum):
    INVALID = "invalid"  # the request is malformed or a field is wrong
    UNAUTHENTICATED = "unauthenticated"  # a person's sign-in failed (never a device's)
    FORBIDDEN = "forbidden"  # who asks may not do this (a device's identity is refused)
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"  # the request clashes with what exists
    GONE = "gone"  # declined for good (UserAuthenticate's documented answer)
    UNPROCESSABLE = "unprocessable"  # well-formed, but refused by validation
    RATE_LIMITED = "rate_limited"
    TOO_LARGE = "too_large"  # the body is larger than this server accepts
    UPSTREAM = "upstream"  # a service this server relies on (Apple's) failed
    UNAVAILABLE = "unavailable"  # this server is not set up for it (yet)


HTTP_STATUS: MappingProxyType[Kind, int] = MappingProxyType(
    {
        Kind.INVALID: 400,
        Kind.UNAUTHENTICATED: 401,
        Kind.FORBIDDEN: 403,
        Kind.NOT_FOUND: 404,
        Kind.CONFLICT: 409,
        Kind.GONE: 410,
        Kind.TOO_LARGE: 413,
        Kind.UNPROCESSABLE: 422,
        Kind.RATE_LIMITED: 429,
        Kind.UPSTREAM: 502,
        Kind.UNAVAILABLE: 503,
    }
)


class DomainError(Exception):
    """A refusal with a message meant for whoever asked (an admin, a device's log).

    ``extra`` holds structured details answered beside the message (``problems``: key paths
    and reasons; ``candidates``: the devices an ambiguous serial names). ``kind`` overrides
    the class's kind, for a refusal relayed from elsewhere (Apple's answer)."""

    kind: Kind = Kind.INVALID

    def __init__(self, message: str, kind: Kind | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind
        self.extra: dict[str, Any] = extra

    @property
    def status(self) -> int:
        """The HTTP status of this kind (read from the one table)."""
        return HTTP_STATUS[self.kind]


class Invalid(DomainError):
    kind = Kind.INVALID


class Unauthenticated(DomainError):
    kind = Kind.UNAUTHENTICATED


class Forbidden(DomainError):
    kind = Kind.FORBIDDEN


class NotFound(DomainError):
    kind = Kind.NOT_FOUND


class Conflict(DomainError):
    kind = Kind.CONFLICT


class Gone(DomainError):
    kind = Kind.GONE


class Unprocessable(DomainError):
    kind = Kind.UNPROCESSABLE


class RateLimited(DomainError):
    """Refused before any work is done; ``retry_after`` is in seconds."""

    kind = Kind.RATE_LIMITED

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(DomainError):
    kind = Kind.UNAVAILABLE


def status_of(exc: BaseException) -> int | None:
    """The HTTP status a refusal answers with; None for anything that is not a DomainError."""
    return HTTP_STATUS[exc.kind] if isinstance(exc, DomainError) else None
