"""RemoveApplication: queued by app reconciliation for a catalog app no longer assigned.

Its answer: once acknowledged, the apps feature forgets the device's state for that app.
"""

from __future__ import annotations

from collections.abc import Iterator

from mdmserver.commands.answers import AnswerRule, Handler, Readers


def _readers(f: Readers) -> Iterator[Handler]:
    if f.apps is not None:
        yield f.apps.on_answer


ANSWER = AnswerRule("RemoveApplication", _readers)
