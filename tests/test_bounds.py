"""mdmserver/bounds.py stays in step with the schema: each rule's length is its column's."""

from __future__ import annotations

import pytest
from sqlalchemy import Integer, String

from mdmserver import bounds
from mdmserver.storage.sql.schema import metadata

TEXT_RULES = {
    **{f"check-in {key}": rule for key, rule in bounds.CHECKIN_TEXT.items()},
    **{f"inventory {name}": rule for name, rule in bounds.INVENTORY_TEXT.items()},
    "CHANNEL_ID": bounds.CHANNEL_ID,
    "USER_CHANNEL_ID": bounds.USER_CHANNEL_ID,
    "COMMAND_UUID": bounds.COMMAND_UUID,
    "TAG": bounds.TAG,
    "PROFILE_NAME": bounds.PROFILE_NAME,
    "PROFILE_IDENTIFIER": bounds.PROFILE_IDENTIFIER,
}


def column_length(name: str) -> int:
    table, column = name.split(".")
    kind = metadata.tables[table].c[column].type
    assert isinstance(kind, String) and kind.length, f"{name} is not a bounded string"
    return kind.length


@pytest.mark.parametrize("name", sorted(TEXT_RULES))
def test_text_rules_are_their_columns(name):
    rule = TEXT_RULES[name]
    if rule is bounds.USER_CHANNEL_ID:
        assert rule.max_len <= column_length(rule.column)
    else:
        assert rule.max_len == column_length(rule.column), rule


def test_blob_rules_fit_their_hex_columns():
    for rule in bounds.CHECKIN_BYTES.values():
        assert rule.max_len * 2 == column_length(rule.column)


def test_a_user_channel_key_fits_the_enrollment_id():
    # enrollments.id (and every column keyed by it) holds "<device id>:<user id>".
    longest = bounds.CHANNEL_ID.max_len + 1 + bounds.USER_CHANNEL_ID.max_len
    for table in ("enrollments", "command_queue", "push_outbox", "push_status", "events"):
        column = "id" if table == "enrollments" else "enrollment_id"
        assert longest <= column_length(f"{table}.{column}")
    assert bounds.CHANNEL_ID.max_len == column_length("enrollments.device_id")


def test_an_assignment_target_fits_its_column():
    assert len("tag:") + bounds.TAG.max_len <= column_length("profile_assignments.target")


def test_integer_rules_fit_an_sql_integer():
    assert isinstance(metadata.tables["enroll_tokens"].c["max_uses"].type, Integer)
    assert bounds.TOKEN_USES.high == 2**31 - 1


@pytest.mark.parametrize(
    "value, problem",
    [
        ("ok", None),
        ("emoji 👨\u200d👩\u200d👧 and a\u00a0no-break space", None),
        ("a\x00b", "control character '\\x00'"),
        ("a\x7f", "control character '\\x7f'"),
        ("a\x9f", "control character '\\x9f'"),
        ("\ud800", "control character '\\ud800'"),
        ("x" * 257, "longer than 256"),
        ("a:b", "must not contain ':'"),
    ],
)
def test_text_rule_problems(value, problem):
    rule = bounds.TextRule("t.c", 256, forbidden=":")
    found = rule.problem(value)
    assert (found is None) if problem is None else (problem in found)


def test_loads_json_bounds():
    assert bounds.loads_json(b'{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    assert bounds.loads_json("[" * 32 + "]" * 32) is not None
    for raw, message in [
        ("[" * 33 + "]" * 33, "nested deeper than 32"),
        ('{"a": ' * 40 + "1" + "}" * 40, "nested deeper than 32"),
        ("[" * 100_000 + "]" * 100_000, "nested deeper than 32"),
        ("1" * 21, "an integer of 21 digits"),
        ("-" + "1" * 21, "an integer of 21 digits"),
        ("[Infinity]", "Infinity is not a JSON number"),
        ('{"a\\u0000": 1}', "NUL"),
        ('["\\ud800"]', "lone surrogate"),
    ]:
        with pytest.raises(bounds.BoundError, match=message):
            bounds.loads_json(raw)
