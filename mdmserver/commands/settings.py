"""Settings: queued by app reconciliation with an ApplicationConfiguration item when an
installed app's managed app configuration changed (its rules are Apple's schema alone).

Its answer: the apps feature records whether the configuration applied; an Error, or an item
of the ``Settings`` results with Status Error (Apple's response keys: Status, ErrorChain,
Identifier), keeps the ErrorChain and has it sent again after a backoff
(mdmserver.apps.reconcile.AppReconciler.on_settings). Settings commands an admin queued are
read by no one.
"""

from __future__ import annotations

from collections.abc import Iterator

from mdmserver.commands.answers import AnswerRule, Handler, Readers


def _readers(f: Readers) -> Iterator[Handler]:
    if f.apps is not None:
        yield f.apps.on_settings


ANSWER = AnswerRule("Settings", _readers)
