"""Hostile admin and trust input, on SQLite and PostgreSQL: a 4xx with a message, nothing stored.

Before mdmserver/bounds.py these answered 500 on PostgreSQL (a NUL in a path, a query parameter,
a cursor or a tag; ``uses: 2**40``) or on both (JSON nested 100k deep, a 5,000-digit integer,
``uses``/``expires_in`` of 2**70), or were accepted (a compliance policy of 1e12 hours, after
which every trust query failed).
"""

from __future__ import annotations

from tests.api.conftest import Api, make_key, state
from tests.profiles.conftest import PASSCODE, mobileconfig

NUL_PATHS = [
    ("GET", "/api/v1/devices/a%00b"),
    ("GET", "/api/v1/devices?cursor=%00"),
    ("GET", "/api/v1/devices?tag=%00"),
    ("GET", "/api/v1/devices?tag=ok&tag=a%00"),
    ("GET", "/api/v1/devices/a%00/queue"),
    ("DELETE", "/api/v1/devices/a%00/queue"),
    ("GET", "/api/v1/commands/a%00"),
    ("DELETE", "/api/v1/enrollment-tokens/a%00"),
    ("GET", "/api/v1/profiles/a%00"),
    ("GET", "/api/v1/profiles/status?device=a%00"),
    ("DELETE", "/api/v1/profiles/p/assignments/tag:a%00"),
    ("POST", "/api/v1/devices/a%00/push"),
    ("GET", "/api/v1/push/status?device=%00"),
    ("GET", "/api/v1/compliance/devices/a%00"),
    ("GET", "/api/v1/devices?%00=1"),
    ("GET", "/api/v1/devices?limit=1%0d%0a"),
]
TRUST_PATHS = [
    "/api/v1/trust/devices/a%00",
    "/api/v1/trust/devices/a%00/assertion",
    "/api/v1/trust/certificate/a%00",
    "/api/v1/trust/certificate/ab%00/assertion",
]


def test_control_characters_in_paths_and_query_parameters(app, api: Api):
    api.enroll()
    trust_key = make_key(app, "trust-client", "trust")
    before = state(app)
    for method, path in NUL_PATHS:
        reply = api.client.open(path, method=method, headers=api.headers())
        assert reply.status_code == 400, (path, reply.status_code, reply.get_data(as_text=True))
        assert "control character" in reply.get_json()["error"], path
    for path in TRUST_PATHS:
        reply = api.client.get(path, headers=api.headers(trust_key))
        assert reply.status_code == 400, (path, reply.status_code, reply.get_data(as_text=True))
    assert state(app) == before


BAD_BODIES = [
    ("/api/v1/enrollment-tokens", {"uses": 2**40}, "uses: must be between 1 and 2147483647"),
    ("/api/v1/enrollment-tokens", {"uses": 2**70}, "an integer of 22 digits"),
    ("/api/v1/enrollment-tokens", {"expires_in": 2**70}, "an integer of 22 digits"),
    ("/api/v1/enrollment-tokens", {"expires_in": 2**40}, "expires_in: must be between 1 and"),
    ("/api/v1/enrollment-tokens", {"uses": 0}, "uses: must be between 1"),
    ("/api/v1/enrollment-tokens", {"tags": ["a\x00"]}, "NUL"),
    ("/api/v1/enrollment-tokens", {"tags": ["t" * 129]}, "1 to 128 printable characters"),
    ("/api/v1/enrollment-tokens", {"tags": ["a\nb"]}, "1 to 128 printable characters"),
    ("/api/v1/commands", {"targets": ["a\x00"], "command": {"RequestType": "DeviceLock"}}, "NUL"),
    (
        "/api/v1/commands",
        {"filter": {"tag": "a\x00"}, "command": {"RequestType": "DeviceLock"}},
        "NUL",
    ),
    (
        "/api/v1/commands",
        {"targets": ["x"], "command": {"RequestType": "DeviceLock"}, "priority": 2**70},
        "an integer of 22 digits",
    ),
    ("/api/v1/profiles", {"name": "a\x00", "template": "webclip"}, "NUL"),
    ("/api/v1/profiles/p/assignments", {"target": "tag:\x00"}, "NUL"),
]


def test_bodies_beyond_their_bounds(app, api: Api):
    before = state(app)
    for path, body, message in BAD_BODIES:
        reply = api.post(path, body)
        text = reply.get_data(as_text=True)
        assert 400 <= reply.status_code < 500, (path, body, reply.status_code, text)
        assert message in reply.get_json()["error"], (path, body, text)
    assert state(app) == before


def test_cursors_that_decode_to_control_characters(app, api: Api):
    """A cursor is base64 of a device id: "AA" decodes to NUL (a 500 on PostgreSQL before)."""
    api.enroll()
    for cursor in ("AA", "YQBi", "YQpi"):  # "\x00", "a\x00b", "a\nb"
        reply = api.get(f"/api/v1/devices?cursor={cursor}")
        assert reply.status_code == 400, (cursor, reply.get_data(as_text=True))
        assert "not a cursor this server returned" in reply.get_json()["error"]


def raw_post(api: Api, path: str, raw: bytes, method: str = "POST"):
    headers = {**api.headers(), "Content-Type": "application/json"}
    return api.client.open(path, method=method, data=raw, headers=headers)


def test_json_depth_and_huge_integers(app, api: Api):
    before = state(app)
    deep = b"[" * 100_000 + b"]" * 100_000
    for path, method in [
        ("/api/v1/enrollment-tokens", "POST"),
        ("/api/v1/commands", "POST"),
        ("/api/v1/compliance/policy", "PUT"),
    ]:
        reply = raw_post(api, path, deep, method)
        assert reply.status_code == 400, (path, reply.get_data(as_text=True))
        assert "nested deeper than 32" in reply.get_json()["error"]
    nested = b'{"tags": ' + b"[" * 40 + b"]" * 40 + b"}"
    reply = raw_post(api, "/api/v1/enrollment-tokens", nested)
    assert reply.status_code == 400 and "nested deeper" in reply.get_json()["error"]
    reply = raw_post(api, "/api/v1/enrollment-tokens", b'{"uses": ' + b"9" * 5000 + b"}")
    assert reply.status_code == 400
    assert "an integer of 5000 digits" in reply.get_json()["error"]
    for path, method in [
        ("/api/v1/enrollment-tokens", "POST"),
        ("/api/v1/compliance/policy", "PUT"),
        ("/api/v1/profiles", "POST"),
    ]:
        reply = raw_post(api, path, b'{"tags": ["\\ud800"], "name": "\\udfff"}', method)
        assert reply.status_code == 400, (path, reply.get_data(as_text=True))
        assert "lone surrogate" in reply.get_json()["error"]
    reply = raw_post(api, "/api/v1/enrollment-tokens", b'{"uses": NaN}')
    assert reply.status_code == 400 and "NaN is not a JSON number" in reply.get_json()["error"]
    assert state(app) == before


def test_bounds_are_not_below_the_columns(app, api: Api):
    """The largest values the bounds allow are stored (and answered) on both databases."""
    reply = api.post(
        "/api/v1/enrollment-tokens",
        {"uses": 2**31 - 1, "expires_in": 10 * 366 * 24 * 3600, "tags": ["t" * 128]},
    )
    assert reply.status_code == 201, reply.get_data(as_text=True)
    assert reply.get_json()["max_uses"] == 2**31 - 1


POLICIES = [
    ({"max_checkin_age_hours": 1e12}, "max_checkin_age_hours must be a number above 0"),
    ({"max_checkin_age_hours": 0}, "max_checkin_age_hours"),
    ({"identity_cert_min_days": 1e9}, "identity_cert_min_days"),
    ({"remediation": {"device_lock_after_hours": 2**60}}, "device_lock_after_hours"),
]


def test_compliance_policy_values_have_ranges(app, api: Api):
    udid = api.enroll()
    trust_key = make_key(app, "trust-client", "trust")
    before = state(app)
    for body, message in POLICIES:
        reply = api.client.put("/api/v1/compliance/policy", json=body, headers=api.headers())
        assert reply.status_code == 422, (body, reply.get_data(as_text=True))
        assert message in reply.get_json()["error"]
    assert state(app) == before
    # Trust queries still work: the policy in force is the one before the refused ones.
    reply = api.client.get(f"/api/v1/trust/devices/{udid}", headers=api.headers(trust_key))
    assert reply.status_code == 200, reply.get_data(as_text=True)
    reply = api.client.put(
        "/api/v1/compliance/policy", json={"max_checkin_age_hours": 87840}, headers=api.headers()
    )
    assert reply.status_code == 200
    reply = api.client.get(f"/api/v1/trust/devices/{udid}", headers=api.headers(trust_key))
    assert reply.status_code == 200, reply.get_data(as_text=True)


def test_profile_names_identifiers_and_targets_fit_their_columns(app, api: Api):
    upload = mobileconfig({"PayloadType": PASSCODE, "minLength": 6})
    headers = api.headers()
    reply = api.client.post("/api/v1/profiles/upload?name=p", data=upload, headers=headers)
    assert reply.status_code == 201, reply.get_data(as_text=True)
    before = state(app)
    for query, words in (
        ("name=" + "n" * 129, "1 to 128 characters"),
        ("name=q&identifier=" + "i" * 256, "longer than 255"),
    ):
        reply = api.client.post(f"/api/v1/profiles/upload?{query}", data=upload, headers=headers)
        assert reply.status_code == 422, (query, reply.get_data(as_text=True))
        assert words in reply.get_data(as_text=True), query
    for target, words in (("tag:" + "t" * 129, "longer than 128"), ("tag:a\tb", "control")):
        reply = api.post("/api/v1/profiles/p/assignments", {"target": target})
        assert reply.status_code == 400, (target, reply.get_data(as_text=True))
        assert words in reply.get_json()["error"]
    assert state(app) == before
    reply = api.post("/api/v1/profiles/p/assignments", {"target": "tag:" + "t" * 128})
    assert reply.status_code == 201, reply.get_data(as_text=True)
