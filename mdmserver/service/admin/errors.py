"""Refusals of the admin service, each carrying the HTTP status the API answers with.

The CLI prints the same message; both callers share the same wording this way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from mdmserver.storage.base import AmbiguousSerial

T = TypeVar("T")


class AdminError(Exception):
    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class BadRequest(AdminError):
    status = 400


class NotFound(AdminError):
    status = 404


class Conflict(AdminError):
    status = 409


class Unprocessable(AdminError):
    status = 422


class AmbiguousDevice(Conflict):
    """A serial number that names several enrolled devices: the admin must pick one by UDID.
    ``candidates`` are those devices (the API answers them beside the message)."""

    def __init__(self, exc: AmbiguousSerial) -> None:
        super().__init__(str(exc))
        self.candidates = sorted({d for ids in exc.candidates.values() for d in ids})


def unambiguous(lookup: Callable[[], T]) -> T:
    """Run a lookup by UDID or serial, turning an ambiguous serial into a 409."""
    try:
        return lookup()
    except AmbiguousSerial as exc:
        raise AmbiguousDevice(exc) from None
