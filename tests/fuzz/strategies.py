"""Hypothesis strategies the fuzz targets share: plist values, and mutations of a valid input.

A mutated valid input (bytes flipped, cut, spliced) reaches far deeper into a parser than random
bytes do, which mostly stop at the first check. Every target asserts the same property: the
parser returns its typed value or raises the project's own refusal, never another exception.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Bounded, so the whole fuzz directory runs in seconds; MDM_FUZZ_SCALE=50 hunts for longer.
_SCALE = max(1, int(os.environ.get("MDM_FUZZ_SCALE", "1")))
FUZZ = settings(
    max_examples=100 * _SCALE,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ_SLOW = settings(FUZZ, max_examples=60 * _SCALE)  # targets that do public-key work per input

# What XML can carry: no NUL, no C0 controls but tab and newlines, no lone surrogates. DEL, C1
# controls, ':' and '/' are in (the bounds refuse some of them); long runs reach the length bounds.
_char = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from(
    "\t\n\r:/\x7f\x85"
)
plist_text = st.text(_char, max_size=24) | st.builds(
    lambda char, count: char * count, _char, st.integers(0, 400)
)
plist_scalar = st.one_of(
    plist_text,
    st.binary(max_size=300),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda d: d.replace(microsecond=0)
    ),
)
plist_value = st.recursive(
    plist_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(plist_text, inner, max_size=4),
    max_leaves=5,
)


def message_from(keys: list[str], required: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A dictionary over documented ``keys`` with any plist values, sometimes well typed."""
    return st.builds(
        lambda chosen, extra: {**required, **chosen, **extra},
        st.dictionaries(st.sampled_from(keys), plist_value, max_size=min(len(keys), 6)),
        st.dictionaries(plist_text, plist_value, max_size=1),
    )


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with a few bytes replaced, a slice cut out or repeated, or truncated."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        kind = draw(st.sampled_from(["flip", "cut", "repeat", "truncate", "insert"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)
