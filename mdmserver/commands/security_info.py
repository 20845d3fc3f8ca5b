"""SecurityInfo: passcode, FileVault, firewall and other security state.

Its answer: the profile service stores an escrowed FileVault recovery key as received (it
was encrypted to the escrow profile's certificate), then inventory keeps the facts and
compliance is judged again.
"""

from __future__ import annotations

from collections.abc import Iterator

from mdmserver.commands.answers import AnswerRule, Handler, Readers


def _readers(f: Readers) -> Iterator[Handler]:
    if f.profiles is not None:
        yield f.profiles.on_security_info
    if f.inventory is not None:
        yield f.inventory.on_result


ANSWER = AnswerRule("SecurityInfo", _readers)
