"""DeviceInformation: what the device is (model, OS version, serial, supervision...).

Queued by inventory on enrollment and on its schedule, with every query Apple documents for
the platform (mdmserver.inventory.queries). Its answer: inventory parses and stores the facts
(the platform is read from them), then compliance is judged again in the same request.
"""

from __future__ import annotations

from collections.abc import Iterator

from mdmserver.commands.answers import AnswerRule, Handler, Readers


def _readers(f: Readers) -> Iterator[Handler]:
    if f.inventory is not None:
        yield f.inventory.on_result


ANSWER = AnswerRule("DeviceInformation", _readers)
