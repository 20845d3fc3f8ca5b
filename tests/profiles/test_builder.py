"""The builder fills the Payload* keys; UUIDs follow the content, so changes are visible."""

from __future__ import annotations

import pytest

from mdmserver.profiles.builder import build
from mdmserver.profiles.template import TemplateError


def _profile(min_length: int = 6) -> dict:
    return {
        "PayloadDisplayName": "Passcode",
        "PayloadContent": [
            {"PayloadType": "com.apple.mobiledevice.passwordpolicy", "minLength": min_length}
        ],
    }


def test_fills_identifiers_uuids_versions_and_scope():
    built = build(_profile(), "com.example.pass", scope="System")
    p = built.profile
    assert (p["PayloadType"], p["PayloadVersion"], p["PayloadScope"]) == (
        "Configuration", 1, "System"
    )  # fmt: skip
    inner = p["PayloadContent"][0]
    assert inner["PayloadIdentifier"] == "com.example.pass.0"
    assert inner["PayloadVersion"] == 1
    assert len({p["PayloadUUID"], inner["PayloadUUID"]}) == 2


def test_same_content_same_bytes_changed_content_new_uuid():
    first, again = build(_profile(), "com.example.pass"), build(_profile(), "com.example.pass")
    assert first.content == again.content
    changed = build(_profile(8), "com.example.pass")
    assert changed.payload_uuid != first.payload_uuid


def test_given_inner_uuids_are_kept_and_top_level_uuid_is_ours():
    profile = _profile()
    profile["PayloadUUID"] = "SAME-FOREVER"
    profile["PayloadContent"][0]["PayloadUUID"] = "INNER"
    built = build(profile, "com.example.pass")
    assert built.profile["PayloadContent"][0]["PayloadUUID"] == "INNER"
    assert built.payload_uuid != "SAME-FOREVER"


def test_unknown_payload_reference_and_bad_scope_are_refused():
    profile = _profile()
    profile["PayloadContent"][0]["Ref"] = "${uuid:nothing}"
    with pytest.raises(TemplateError, match="nothing"):
        build(profile, "com.example.pass")
    with pytest.raises(TemplateError, match="PayloadScope"):
        build(_profile(), "com.example.pass", scope="Everyone")
