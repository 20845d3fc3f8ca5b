"""Signed assertions verify offline with the published JWKS; each API takes only its own key
scope; devices are found by certificate fingerprint and by the proxy's certificate header."""

from __future__ import annotations

import base64
import dataclasses
import os
import stat

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from mdmserver.app import create_app
from mdmserver.crypto.ca import fingerprint_sha256
from mdmserver.web.runtime import runtime
from tests.trust.conftest import enroll


def test_assertion_verifies_with_the_published_jwks(app, live_server, pki, trust, policy):
    device = pki.device()
    enroll(live_server, device)
    body = trust.get(f"/api/v1/trust/devices/{device.udid}/assertion").json()
    assert body["managed"] is True and body["compliant"] is True
    token = body["assertion"]
    client = jwt.PyJWKClient(live_server + "/api/v1/trust/jwks.json")  # public: no key sent
    signing_key = client.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token, signing_key.key, algorithms=["ES256"], options={"require": ["exp", "iat", "sub"]}
    )
    assert claims["sub"] == device.udid
    assert claims["compliant"] is True and claims["managed"] is True
    assert claims["exp"] - claims["iat"] == 300
    assert jwt.get_unverified_header(token)["kid"] == signing_key.key_id
    key_file = runtime(app).config.home / "trust_jwt.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    # A token signed by anyone else does not verify against our JWKS.
    from cryptography.hazmat.primitives.asymmetric import ec

    forged = jwt.encode(
        {**claims, "compliant": True},
        ec.generate_private_key(ec.SECP256R1()),
        algorithm="ES256",
        headers={"kid": signing_key.key_id},
    )
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, signing_key.key, algorithms=["ES256"])


def test_noncompliant_assertion_and_unknown_device(app, live_server, pki, trust, policy):
    device = pki.device()
    enroll(live_server, device, {"SecurityInfo": {"SecurityInfo": {"PasscodePresent": False}}})
    body = trust.get(f"/api/v1/trust/devices/{device.udid}/assertion").json()
    claims = jwt.decode(body["assertion"], options={"verify_signature": False})
    assert claims["compliant"] is False and claims["sub"] == device.udid
    unknown = trust.get("/api/v1/trust/devices/NOPE/assertion").json()
    assert unknown == {"managed": False, "compliant": False}


def test_scopes_are_not_interchangeable(live_server, trust, admin):
    path = "/api/v1/trust/devices/ANY"
    assert admin.get(path).status_code == 403
    assert trust.get(path).status_code == 200
    assert trust.get("/api/v1/compliance/policy").status_code == 403
    assert admin.get("/api/v1/compliance/policy").status_code == 200
    assert trust.get("/api/v1/devices").status_code == 403  # the admin API refuses it too
    anonymous = type(trust)(live_server, "")
    assert anonymous.get(path).status_code == 401
    assert type(trust)(live_server, "mdm_not-a-key").get(path).status_code == 401
    assert anonymous.get("/api/v1/trust/jwks.json").status_code == 200


def test_trust_by_certificate_fingerprint(app, live_server, pki, trust, policy):
    device = pki.device()
    enroll(live_server, device)
    fingerprint = fingerprint_sha256(device.certificate)
    body = trust.get(f"/api/v1/trust/certificate/{fingerprint}").json()
    assert body["managed"] is True and body["compliant"] is True
    signed = trust.get(f"/api/v1/trust/certificate/{fingerprint.upper()}/assertion").json()
    assert jwt.decode(signed["assertion"], options={"verify_signature": False})["sub"] == (
        device.udid
    )
    other = fingerprint_sha256(pki.identity("stranger")[0])
    assert trust.get(f"/api/v1/trust/certificate/{other}").json() == {
        "managed": False,
        "compliant": False,
    }
    assert trust.get("/api/v1/trust/certificate/not-hex").json()["managed"] is False


def test_trust_by_the_presented_certificate(app, app_config, live_server, pki, keys, policy):
    device = pki.device()
    enroll(live_server, device)
    proxied = create_app(dataclasses.replace(app_config, client_cert_header="Client-Cert"))
    try:
        client = proxied.test_client()
        auth = {"Authorization": f"Bearer {keys['trust']}"}
        der = device.certificate.public_bytes(Encoding.DER)
        header = ":" + base64.b64encode(der).decode() + ":"
        reply = client.get("/api/v1/trust/certificate", headers={**auth, "Client-Cert": header})
        assert reply.get_json()["compliant"] is True
        reply = client.get(
            "/api/v1/trust/certificate/assertion", headers={**auth, "Client-Cert": header}
        )
        assert "assertion" in reply.get_json()
        assert client.get("/api/v1/trust/certificate", headers=auth).get_json() == {
            "managed": False,
            "compliant": False,
        }
        bad = client.get("/api/v1/trust/certificate", headers={**auth, "Client-Cert": ":!!:"})
        assert bad.status_code == 400
    finally:
        runtime(proxied).close()
    # Without the setting, the route says what is missing.
    plain = app.test_client().get(
        "/api/v1/trust/certificate", headers={"Authorization": f"Bearer {keys['trust']}"}
    )
    assert plain.status_code == 400 and "MDM_CLIENT_CERT_HEADER" in plain.get_json()["error"]


def test_policy_api_validates_and_audits(app, admin):
    reply = admin.put("/api/v1/compliance/policy", {"passcode_presnt": True})
    assert reply.status_code == 422 and "passcode_presnt" in reply.json()["error"]
    reply = admin.put("/api/v1/compliance/policy", {"min_os_version": {"iOS": "17.2"}})
    assert reply.status_code == 200
    current = admin.get("/api/v1/compliance/policy").json()
    assert current["source"] == "api" and current["policy"]["min_os_version"] == {"iOS": "17.2"}
    actions = [e.action for e in runtime(app).admin.store.audit_entries()]
    assert "compliance.policy.set" in actions


@pytest.mark.parametrize(
    ("method", "body", "status", "action", "outcome"),
    [
        ("PUT", b"{", 400, "compliance.policy.set", "refused 400: malformed JSON"),
        ("PUT", b"[]", 400, "compliance.policy.set", "refused 400: expected a JSON object"),
        ("PUT", b'{"colour": 1}', 422, "compliance.policy.set", "refused 422: unknown policy key"),
        ("PUT", b'{"supervised": false}', 200, "compliance.policy.set", "ok"),
        ("DELETE", None, 200, "compliance.policy.reset", "ok"),
    ],
)
def test_policy_changes_are_audited_refusals_included(
    app, keys, method, body, status, action, outcome
):
    """One row per change naming the key, the action and the policy, a refused body too."""
    store = runtime(app).admin.store
    before = len(store.audit_entries(limit=1000))
    reply = app.test_client().open(
        "/api/v1/compliance/policy",
        method=method,
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {keys['admin']}"},
    )
    assert reply.status_code == status, reply.get_json()
    entries = store.audit_entries(limit=1000)
    assert len(entries) == before + 1
    assert (entries[0].actor, entries[0].action, entries[0].targets) == (
        "key:admin-key",
        action,
        ["policy"],
    )
    assert entries[0].outcome.startswith(outcome), entries[0].outcome
    if method == "PUT" and status == 200:
        assert entries[0].detail == {"policy": {"supervised": False}}


def test_a_policy_change_by_a_key_of_another_scope_is_not_audited(app, keys):
    """Turned away before it is a change (403), like every route of the admin API."""
    store = runtime(app).admin.store
    before = len(store.audit_entries(limit=1000))
    reply = app.test_client().put(
        "/api/v1/compliance/policy",
        json={"supervised": False},
        headers={"Authorization": f"Bearer {keys['trust']}"},
    )
    assert reply.status_code == 403
    assert len(store.audit_entries(limit=1000)) == before
