"""CertificateList: the certificates installed on the device.

Its answer: inventory keeps them as facts, then compliance is judged again.
"""

from __future__ import annotations

from collections.abc import Iterator

from mdmserver.commands.answers import AnswerRule, Handler, Readers


def _readers(f: Readers) -> Iterator[Handler]:
    if f.inventory is not None:
        yield f.inventory.on_result


ANSWER = AnswerRule("CertificateList", _readers)
