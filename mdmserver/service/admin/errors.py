"""Refusals of the admin service, each carrying the HTTP status the API answers with.

The CLI prints the same message; both callers share the same wording this way.
"""

from __future__ import annotations


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
