"""What happens with a command's answer, declared by the command's own module.

A command module that features read the answer of declares ``ANSWER``: an :class:`AnswerRule`
naming, in order, the feature handlers that read it (``commands/profile_list.py``: inventory
keeps the list as facts, the profile service stores the device's own account). The hooks
registry (:mod:`mdmserver.service.hooks`) dispatches each first answer by its RequestType to
that one declaration, then to any extra ``on_result`` handler (webhooks-like observers, tests).

Answer handlers only record: facts, states, escrowed keys. Deciding what the device gets next
because of an answer (a reconciliation after a ProfileList) is a step of
:mod:`mdmserver.service.next_command`, which runs after every handler in the same request.

This module sits below the features: it names what each feature must offer (the Protocols
below) and never imports a feature.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from mdmserver.protocol.enrollment_id import EnrollmentIdentity
from mdmserver.protocol.results import CommandResult


@dataclass(frozen=True, slots=True)
class ResultEvent:
    """A device's first answer to a command (duplicates and NotNow are not announced)."""

    result: CommandResult
    request_type: str
    body: bytes

    @property
    def identity(self) -> EnrollmentIdentity:
        return self.result.identity


Handler = Callable[[ResultEvent], None]


class InventoryReader(Protocol):
    """mdmserver.inventory.service.InventoryService: facts, history, compliance re-judged."""

    def on_result(self, event: ResultEvent) -> None: ...


class ProfilesReader(Protocol):
    """mdmserver.profiles.service.ProfileService."""

    def on_profile_list(self, event: ResultEvent) -> None: ...
    def on_answer(self, event: ResultEvent) -> None: ...
    def on_security_info(self, event: ResultEvent) -> None: ...


class AppsReader(Protocol):
    """mdmserver.apps.reconcile.AppReconciler."""

    def on_answer(self, event: ResultEvent) -> None: ...
    def on_app_list(self, event: ResultEvent) -> None: ...
    def on_settings(self, event: ResultEvent) -> None: ...


@dataclass
class Readers:
    """The features that read answers; None: the feature is off (or not built yet)."""

    inventory: InventoryReader | None = None
    profiles: ProfilesReader | None = None
    apps: AppsReader | None = None


@dataclass(frozen=True)
class AnswerRule:
    """One RequestType's answer: ``readers`` lists the handlers of the features present."""

    request_type: str
    readers: Callable[[Readers], Iterable[Handler]]
