"""Extension points of the protocol core: what features do when a device answers or enrolls.

- An answer (first time recorded, not NotNow) goes to the readers its command's module
  declares (``ANSWER`` in ``mdmserver/commands/<command>.py``, collected in
  ``commands.registry.ANSWERS``), given the features in :attr:`Hooks.readers`, then to any
  extra ``on_result`` handler. Readers record (facts, states); what the device gets next
  because of an answer is decided afterwards by the steps of
  :mod:`mdmserver.service.next_command`, in the same request.
- An enrollment (``on_enrolled``) lets features queue their first commands at once, so the
  queue an admin lists right after enrollment shows them.

Handlers run inline, inside the device's request, so an answer is reflected before the
device's next poll (a trust query made right after sees it). A handler that fails is logged and
skipped: a bug in one feature never fails a device request or loses the stored result.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from mdmserver.commands.answers import Readers, ResultEvent
from mdmserver.commands.registry import ANSWERS
from mdmserver.logs import get_logger
from mdmserver.protocol.enrollment_id import EnrollmentIdentity

log = get_logger("hooks")

ANY_REQUEST_TYPE = "*"
E = TypeVar("E")


__all__ = ["ANY_REQUEST_TYPE", "EnrolledEvent", "Hooks", "ResultEvent"]


@dataclass(frozen=True, slots=True)
class EnrolledEvent:
    """An enrollment became active: its first TokenUpdate after an Authenticate."""

    identity: EnrollmentIdentity


ResultHandler = Callable[[ResultEvent], None]
EnrolledHandler = Callable[[EnrolledEvent], None]
# Answers a DeclarativeManagement check-in (its return value is the reply's body).
DeclarativeHandler = Callable[[Any], Any]


class Hooks:
    def __init__(self, readers: Readers | None = None) -> None:
        # The features that read answers, as the command modules declare (commands/answers).
        self.readers = readers or Readers()
        self._results: dict[str, list[ResultHandler]] = defaultdict(list)
        self._enrolled: list[EnrolledHandler] = []
        self.declarative: DeclarativeHandler | None = None

    def serve_declarative(self, handler: DeclarativeHandler) -> None:
        """The one feature that answers DeclarativeManagement check-ins (mdmserver.ddm).
        Unlike the other hooks its errors reach the device: they are its answer."""
        self.declarative = handler

    def on_result(self, request_type: str, handler: ResultHandler) -> None:
        """Also call ``handler`` for answers to ``request_type`` (``"*"``: every answer), after
        the readers the command declares. For observers and tests: a feature that reads a
        command's answer says so in the command's module instead."""
        self._results[request_type].append(handler)

    def on_enrolled(self, handler: EnrolledHandler) -> None:
        self._enrolled.append(handler)

    @property
    def wants_results(self) -> bool:
        readers = self.readers
        features = (readers.inventory, readers.profiles, readers.apps)
        return any(f is not None for f in features) or any(self._results.values())

    def result(self, event: ResultEvent) -> None:
        rule = ANSWERS.get(event.request_type)
        handlers = list(rule.readers(self.readers)) if rule is not None else []
        handlers += self._results.get(event.request_type, [])
        handlers += self._results.get(ANY_REQUEST_TYPE, [])
        for handler in handlers:
            self._run(handler, event, event.identity)

    def enrolled(self, event: EnrolledEvent) -> None:
        for handler in self._enrolled:
            self._run(handler, event, event.identity)

    @staticmethod
    def _run(handler: Callable[[E], None], event: E, who: EnrollmentIdentity) -> None:
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
