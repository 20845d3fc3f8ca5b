"""The check-in key tables agree with Apple's YAML, so spec drift shows up as a failure."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from mdmserver.protocol.checkin import MESSAGE_TYPES

yaml = pytest.importorskip("yaml")

pytestmark = pytest.mark.shared

YAML_TYPES = {"<string>": str, "<data>": bytes, "<boolean>": bool, "<dictionary>": dict}
COMMON_FIELDS = {"identity", "raw"}


def load_specs(spec_dir: Path) -> dict[str, dict[str, Any]]:
    specs = {}
    for path in sorted((spec_dir / "mdm" / "checkin").glob("*.yaml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        specs[spec["payload"]["requesttype"]] = spec
    return specs


def test_every_documented_message_type_is_implemented(spec_dir: Path) -> None:
    assert set(load_specs(spec_dir)) == set(MESSAGE_TYPES)


@pytest.mark.parametrize("message_type", sorted(MESSAGE_TYPES))
def test_key_names_and_types_match_the_yaml(spec_dir: Path, message_type: str) -> None:
    spec = load_specs(spec_dir)[message_type]
    documented = {
        item["key"]: YAML_TYPES[item["type"]]
        for item in spec["payloadkeys"]
        if item["key"] != "MessageType"
    }
    table = {key.name: key.kind for key in MESSAGE_TYPES[message_type].KEYS}
    assert table == documented


@pytest.mark.parametrize("message_type", sorted(MESSAGE_TYPES))
def test_message_type_value_matches_the_yaml(spec_dir: Path, message_type: str) -> None:
    spec = load_specs(spec_dir)[message_type]
    (item,) = [item for item in spec["payloadkeys"] if item["key"] == "MessageType"]
    assert item["rangelist"] == [message_type]


@pytest.mark.parametrize("message_type", sorted(MESSAGE_TYPES))
def test_we_never_require_a_key_apple_calls_optional(spec_dir: Path, message_type: str) -> None:
    spec = load_specs(spec_dir)[message_type]
    presence = {item["key"]: item["presence"] for item in spec["payloadkeys"]}
    required = [key.name for key in MESSAGE_TYPES[message_type].KEYS if key.required]
    assert [name for name in required if presence[name] != "required"] == []


@pytest.mark.parametrize("message_type", sorted(MESSAGE_TYPES))
def test_table_attributes_are_exactly_the_dataclass_fields(message_type: str) -> None:
    cls = MESSAGE_TYPES[message_type]
    fields = {field.name for field in dataclasses.fields(cls)} - COMMON_FIELDS
    assert {key.attr for key in cls.KEYS if key.attr is not None} == fields
