"""InstallProfile: the profile travels as <data> (base64 in JSON). A plain XML profile is
checked to be a plist dictionary; a signed one (CMS, DER) is passed as it is.

Its answer: the profile service records the install (or the refusal with its ErrorChain) for
the profiles it queued; an identity renewal's InstallProfile is confirmed instead by the new
certificate's first request (mdmserver.service.certauth).
"""

from __future__ import annotations

import plistlib
from collections.abc import Iterator, Mapping
from typing import Any

from mdmserver.commands.answers import AnswerRule, Handler, Readers
from mdmserver.commands.base import CommandRule, Problem, TargetFacts


def _check(payload: Mapping[str, Any], _facts: TargetFacts) -> list[Problem]:
    data = payload.get("Payload")
    if not isinstance(data, bytes):
        return []  # absent or mistyped: the schema says so
    if not data:
        return [Problem("command.Payload", "the profile is empty")]
    if data.lstrip()[:1] == b"<":
        try:
            profile = plistlib.loads(data)
        except Exception:
            return [Problem("command.Payload", "the profile is not a valid XML plist")]
        if not isinstance(profile, dict) or "PayloadType" not in profile:
            return [Problem("command.Payload", "the profile plist has no PayloadType")]
    return []


RULE = CommandRule("InstallProfile", check=_check)


def _readers(f: Readers) -> Iterator[Handler]:
    if f.profiles is not None:
        yield f.profiles.on_answer


ANSWER = AnswerRule("InstallProfile", _readers)
