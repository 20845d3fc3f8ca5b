"""Defensive coercion of plist values: devices on different OS versions send the same key with
different types (a bool as 0/1, a number as a string), and sometimes send garbage. Anything that
cannot be read with confidence becomes None ("unknown"), never an exception. A value out of
range for its column (a 400-digit capacity, a control character in a name) is unknown too, with
a warning in the log, so the rest of the answer is still stored."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mdmserver.bounds import INT32_MAX, control_character
from mdmserver.logs import get_logger

log = get_logger("inventory")

MAX_TEXT = 256

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def as_int(value: Any) -> int | None:
    """An integer that fits an SQL INTEGER (the columns these end up in)."""
    number: int | None = None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:  # not a number, or more digits than int() reads
            return None
    if number is not None and not -INT32_MAX - 1 <= number <= INT32_MAX:
        _unknown("integer out of range", value)
        return None
    return number


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            number = float(value)
        elif isinstance(value, str):
            number = float(value.strip())
        else:
            return None
    except OverflowError:  # an integer beyond any float
        _unknown("number out of range", value)
        return None
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def as_text(value: Any, limit: int = MAX_TEXT) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()[:limit]
    if control_character(text) is not None:
        _unknown("control character in text", value)
        return None
    return text or None


def as_dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _unknown(reason: str, value: Any) -> None:
    shown = repr(value)
    log.warning(
        "inventory_value_unknown",
        extra={"fields": {"reason": reason, "value": shown[:40], "length": len(shown)}},
    )
