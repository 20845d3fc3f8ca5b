"""RemoveProfile: queued by profile reconciliation for a profile no longer assigned.

Its answer: the profile service records the removal, or the refusal with its ErrorChain.
"""

from __future__ import annotations

from collections.abc import Iterator

from mdmserver.commands.answers import AnswerRule, Handler, Readers


def _readers(f: Readers) -> Iterator[Handler]:
    if f.profiles is not None:
        yield f.profiles.on_answer


ANSWER = AnswerRule("RemoveProfile", _readers)
