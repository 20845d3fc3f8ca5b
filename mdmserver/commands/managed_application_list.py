"""ManagedApplicationList: the apps the MDM manages on the device, with their status.

Its answer: inventory keeps it as facts and compliance is judged again; the apps feature notes
when it came (its scheduled reconcile asks again past the interval). The apps step of
:mod:`mdmserver.service.next_command` then compares it with the apps assigned to the device
and queues the missing installs and the removals, in the same request.
"""

from __future__ import annotations

from collections.abc import Iterator

from mdmserver.commands.answers import AnswerRule, Handler, Readers


def _readers(f: Readers) -> Iterator[Handler]:
    if f.inventory is not None:
        yield f.inventory.on_result
    if f.apps is not None:
        yield f.apps.on_app_list


ANSWER = AnswerRule("ManagedApplicationList", _readers)
