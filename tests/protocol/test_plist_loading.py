"""Safe plist loading: what a hostile or broken body gets back."""

from __future__ import annotations

import plistlib

import pytest

from mdmserver.protocol.errors import ProtocolError
from mdmserver.protocol.plist import DEFAULT_MAX_DEPTH, dumps, loads

HEADER = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
    b'"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
)
IDLE = plistlib.dumps({"Status": "Idle", "UDID": "1c111c111c111c111c111c111c111c111c111c11"})


def wrap(inner: bytes) -> bytes:
    return HEADER + b'<plist version="1.0">' + inner + b"</plist>"


def refused(body: bytes, **limits: int) -> str:
    with pytest.raises(ProtocolError) as info:
        loads(body, **limits)
    return str(info.value)


def test_idle_body_parses_to_its_keys() -> None:
    assert loads(IDLE) == {"Status": "Idle", "UDID": "1c111c111c111c111c111c111c111c111c111c11"}


def test_bytearray_body_is_accepted() -> None:
    assert loads(bytearray(IDLE))["Status"] == "Idle"


def test_text_instead_of_bytes_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="bytes"):
        loads(IDLE.decode())  # type: ignore[arg-type]


def test_empty_body_is_refused() -> None:
    assert "empty body" in refused(b"")


def test_oversized_body_is_refused_before_parsing() -> None:
    # Not XML at all: only a size check made before parsing can produce this message.
    message = refused(b"x" * 101, max_bytes=100)
    assert message == "body is 101 bytes; the limit is 100"


def test_body_at_the_size_limit_is_accepted() -> None:
    assert loads(IDLE, max_bytes=len(IDLE))["Status"] == "Idle"


def test_binary_plist_is_refused_with_advice() -> None:
    body = plistlib.dumps({"Status": "Idle"}, fmt=plistlib.FMT_BINARY)
    assert refused(body) == "binary plists are not accepted; send an XML plist"


BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n'
    b'<!DOCTYPE plist [\n <!ENTITY lol "lol">\n'
    b' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
    b' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n]>\n'
    b"<plist><dict><key>Status</key><string>&lol3;</string></dict></plist>"
)


@pytest.mark.parametrize(
    "body",
    [
        BILLION_LAUGHS,
        BILLION_LAUGHS.replace(b"DOCTYPE", b"doctype").replace(b"ENTITY", b"EnTiTy"),
        b'<?xml version="1.0"?><!DOCTYPE plist [ ]><plist><dict/></plist>',
        b'<?xml version="1.0"?><!DOCTYPE plist SYSTEM "x.dtd" [\n]><plist><dict/></plist>',
        b"<!ENTITY x SYSTEM 'file:///etc/passwd'><plist><dict/></plist>",
    ],
    ids=["billion-laughs", "mixed-case", "empty-subset", "system-with-subset", "bare-entity"],
)
def test_entity_declarations_and_internal_subsets_are_refused(body: bytes) -> None:
    assert "internal subsets are not accepted" in refused(body)


def test_utf16_body_cannot_hide_markup_from_the_scan() -> None:
    body = BILLION_LAUGHS.replace(b'version="1.0"?>', b'version="1.0" encoding="UTF-16"?>', 1)
    assert "UTF-8" in refused(body.decode().encode("utf-16"))
    assert "UTF-8" in refused(body.decode().encode("utf-16-le"))


def test_declared_non_utf8_encoding_is_refused() -> None:
    body = b'<?xml version="1.0" encoding="ISO-8859-1"?><plist><dict/></plist>'
    assert refused(body) == "plist must be UTF-8 encoded, not 'ISO-8859-1'"


def test_utf8_bom_and_lower_case_declaration_are_accepted() -> None:
    body = b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?><plist><dict/></plist>'
    assert loads(body) == {}


def nested_arrays(levels: int) -> bytes:
    return wrap(b"<dict><key>a</key>" + b"<array>" * levels + b"</array>" * levels + b"</dict>")


def test_100000_nested_arrays_raise_protocol_error_not_recursion_error() -> None:
    message = refused(nested_arrays(100_000))
    assert message == f"plist nests deeper than {DEFAULT_MAX_DEPTH} levels"


def test_deep_array_root_is_refused() -> None:
    body = wrap(b"<array>" * 100_000 + b"</array>" * 100_000)
    assert "root must be a dictionary, got array" in refused(body)


def test_depth_limit_is_exact() -> None:
    # The root dict is level 1, so max_depth - 1 nested arrays just fit.
    assert loads(nested_arrays(DEFAULT_MAX_DEPTH - 1))["a"] is not None
    assert "deeper than" in refused(nested_arrays(DEFAULT_MAX_DEPTH))
    assert "deeper than 3" in refused(nested_arrays(3), max_depth=3)


def test_many_shallow_dicts_are_not_mistaken_for_depth() -> None:
    items = b"<dict><key>k</key><string>v</string></dict>" * 200
    parsed = loads(wrap(b"<dict><key>list</key><array>" + items + b"</array></dict>"))
    assert len(parsed["list"]) == 200


@pytest.mark.parametrize(
    ("inner", "got"),
    [
        (b"<array><string>a</string></array>", "array"),
        (b"<string>Idle</string>", "string"),
        (b"<integer>1</integer>", "integer"),
        (b"", "nothing"),
    ],
)
def test_root_must_be_a_dictionary(inner: bytes, got: str) -> None:
    assert refused(wrap(inner)) == f"plist root must be a dictionary, got {got}"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not xml at all", "malformed XML"),
        (wrap(b"<dict><key>a</key><string>b</string>"), "malformed XML"),
        (wrap(b"<dict><key>T</key><data>Base64=</data></dict>"), "invalid base64 in <data>"),
        (wrap(b"<dict><key>n</key><integer>ten</integer></dict>"), "invalid plist value"),
        (wrap(b"<dict><key>a</key></dict>"), "missing value for key 'a'"),
        (wrap(b"<dict><string>a</string></dict>"), "unexpected element"),
        (wrap(b"<key>a</key>"), "invalid plist structure"),
        (wrap(b"<dict><key>d</key><date>yesterday</date></dict>"), "invalid plist structure"),
    ],
    ids=["garbage", "unclosed", "base64", "integer", "no-value", "no-key", "stray-key", "date"],
)
def test_parser_failures_become_readable_protocol_errors(body: bytes, reason: str) -> None:
    assert reason in refused(body)


def test_dumps_writes_xml_that_loads_back() -> None:
    value = {"CommandUUID": "A", "Command": {"RequestType": "X", "Data": b"\x00\x01", "N": 3}}
    body = dumps(value)
    assert body.startswith(b"<?xml")
    assert loads(body) == value


def test_parser_itself_refuses_entities_behind_the_byte_scan() -> None:
    # Second line of defence: if the raw-bytes scan ever misses a declaration,
    # plistlib's own refusal still surfaces as a ProtocolError.
    from mdmserver.protocol.plist import _parse

    with pytest.raises(ProtocolError, match="entity declarations are not supported"):
        _parse(BILLION_LAUGHS)
