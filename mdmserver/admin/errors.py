"""Refusals of the admin service: the shared kinds of mdmserver/errors.py under the names the
admin code has always used. The API answers each with its kind's status (web/errors.py), the
CLI prints the same message, and the audit trail records both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from mdmserver.errors import Conflict, DomainError, Invalid, NotFound, Unprocessable
from mdmserver.storage.base import AmbiguousSerial

T = TypeVar("T")

AdminError = DomainError  # any refusal: what the console and the CLI catch
BadRequest = Invalid

__all__ = [
    "AdminError",
    "AmbiguousDevice",
    "BadRequest",
    "Conflict",
    "NotFound",
    "Unprocessable",
    "unambiguous",
]


class AmbiguousDevice(Conflict):
    """A serial number that names several enrolled devices: the admin must pick one by UDID.
    ``candidates`` are those devices (the API answers them beside the message)."""

    def __init__(self, exc: AmbiguousSerial) -> None:
        self.candidates = sorted({d for ids in exc.candidates.values() for d in ids})
        super().__init__(str(exc), candidates=self.candidates)


def unambiguous(lookup: Callable[[], T]) -> T:
    """Run a lookup by UDID or serial, turning an ambiguous serial into a 409."""
    try:
        return lookup()
    except AmbiguousSerial as exc:
        raise AmbiguousDevice(exc) from None
