"""What a command rule sees and says: the facts about a target, and the problems found."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mdmserver.catalog.schema import Platform
from mdmserver.errors import Kind, Unprocessable


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason to refuse (or, as a warning, to mention); ``path`` is e.g. "command.PIN"."""

    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class CommandRefused(Unprocessable, ValueError):
    """The command cannot be queued; nothing was stored. ``kind`` is unprocessable (a rule
    refused it) or invalid (it is not a command at all)."""

    def __init__(self, problems: Sequence[Problem], kind: Kind = Kind.UNPROCESSABLE) -> None:
        self.problems = [p for p in problems if p.severity == "error"] or list(problems)
        self.kind = kind
        shown = "; ".join(str(p) for p in self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(shown + more)
        self.extra["problems"] = [{"path": p.path, "message": p.message} for p in self.problems]


@dataclass(frozen=True, slots=True)
class TargetFacts:
    """What decides whether a device can take a command. Hashable, so the catalog judges
    each distinct kind of device once, not each of 100,000 devices."""

    platform: Platform | None
    os_version: str | None
    user_enrollment: bool = False
    has_unlock_token: bool = False
    supervised: bool | None = None  # None until inventory (issue #7) reports it


class Secrets(Protocol):
    """Per-enrollment values a builder may put into a command (never logged)."""

    def unlock_token(self, enrollment_id: str) -> bytes | None: ...


Check = Callable[[Mapping[str, Any], TargetFacts], list[Problem]]
Build = Callable[[dict[str, Any], Sequence[str], Secrets], dict[str, Any]]


def no_check(_payload: Mapping[str, Any], _facts: TargetFacts) -> list[Problem]:
    return []


def as_is(payload: dict[str, Any], _enrollment_ids: Sequence[str], _secrets: Secrets) -> dict:
    return payload


@dataclass(frozen=True)
class CommandRule:
    """One RequestType's own rules, on top of Apple's schema (which always applies)."""

    request_type: str
    check: Check = no_check
    build: Build = as_is
    single_target: str | None = None  # why, when a command is built for one device only
    server_keys: tuple[str, ...] = field(default=())  # keys the server fills, never the caller
