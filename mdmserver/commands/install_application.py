"""InstallApplication and InstallEnterpriseApplication: queued by app reconciliation for a
required app the device lacks (an App Store app by its adamID, or a manifest URL).

Their answer: the apps feature records ``installing``, or ``failed`` with the ErrorChain (a
failed install is tried again after a backoff, see mdmserver.apps.reconcile.retry_at).
"""

from __future__ import annotations

from collections.abc import Iterator

from mdmserver.commands.answers import AnswerRule, Handler, Readers


def _readers(f: Readers) -> Iterator[Handler]:
    if f.apps is not None:
        yield f.apps.on_answer


ANSWERS = (
    AnswerRule("InstallApplication", _readers),
    AnswerRule("InstallEnterpriseApplication", _readers),
)
