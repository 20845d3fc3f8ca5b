"""Extension points of the protocol core: what features do when a device answers or enrolls.

Inventory, compliance, profile reconciliation and identity renewal all react to the same few
moments. Each registers a small handler here instead of growing the command loop. Handlers run
inline, inside the device's request, so an answer is reflected before the device's next poll
(a trust query made right after sees it). A handler that fails is logged and skipped: a bug in
one feature never fails a device request or loses the stored result.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from mdmserver.logs import get_logger
from mdmserver.protocol.enrollment_id import EnrollmentIdentity
from mdmserver.protocol.results import CommandResult

log = get_logger("hooks")

ANY_REQUEST_TYPE = "*"
_Event = TypeVar("_Event")


@dataclass(frozen=True, slots=True)
class ResultEvent:
    """A device's first answer to a command (duplicates are not re-announced)."""

    result: CommandResult
    request_type: str
    body: bytes

    @property
    def identity(self) -> EnrollmentIdentity:
        return self.result.identity


@dataclass(frozen=True, slots=True)
class EnrolledEvent:
    """An enrollment became active: its first TokenUpdate after an Authenticate."""

    identity: EnrollmentIdentity


ResultHandler = Callable[[ResultEvent], None]
EnrolledHandler = Callable[[EnrolledEvent], None]
# Answers a DeclarativeManagement check-in (its return value is the reply's body).
DeclarativeHandler = Callable[[Any], Any]


class Hooks:
    def __init__(self) -> None:
        self._results: dict[str, list[ResultHandler]] = defaultdict(list)
        self._enrolled: list[EnrolledHandler] = []
        self.declarative: DeclarativeHandler | None = None

    def serve_declarative(self, handler: DeclarativeHandler) -> None:
        """The one feature that answers DeclarativeManagement check-ins (mdmserver.ddm).
        Unlike the other hooks its errors reach the device: they are its answer."""
        self.declarative = handler

    def on_result(self, request_type: str, handler: ResultHandler) -> None:
        """Call ``handler`` for answers to ``request_type`` (``"*"``: every answer)."""
        self._results[request_type].append(handler)

    def on_enrolled(self, handler: EnrolledHandler) -> None:
        self._enrolled.append(handler)

    @property
    def wants_results(self) -> bool:
        return any(self._results.values())

    def result(self, event: ResultEvent) -> None:
        handlers = self._results.get(event.request_type, []) + self._results.get(
            ANY_REQUEST_TYPE, []
        )
        for handler in handlers:
            self._run(handler, event, event.identity)

    def enrolled(self, event: EnrolledEvent) -> None:
        for handler in self._enrolled:
            self._run(handler, event, event.identity)

    @staticmethod
    def _run(handler: Callable[[_Event], None], event: _Event, who: EnrollmentIdentity) -> None:
        try:
            handler(event)
        except Exception:
            log.exception(
                "hook_failed",
                extra={
                    "fields": {
                        "hook": getattr(handler, "__qualname__", repr(handler)),
                        "enrollment_id": who.id,
                    }
                },
            )
