"""ProfileList: the profiles installed on the device, in its own words.

Its answer: the profile service stores the list (the device's account is the truth), then
inventory keeps it as facts and compliance is judged again. The profile step of
:mod:`mdmserver.service.next_command` then reconciles against the stored list, in the same
request, so what is missing or no longer assigned goes out in this session.
"""

from __future__ import annotations

from collections.abc import Iterator

from mdmserver.commands.answers import AnswerRule, Handler, Readers


def _readers(f: Readers) -> Iterator[Handler]:
    if f.profiles is not None:
        yield f.profiles.on_profile_list
    if f.inventory is not None:
        yield f.inventory.on_result


ANSWER = AnswerRule("ProfileList", _readers)
