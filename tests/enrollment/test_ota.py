"""Over-the-air enrollment (Apple's profile service) over real HTTP, end to end and attacked.

The device side uses a synthetic Apple device PKI shaped like Apple's (RSA-1024, SHA-1, expired
intermediates), which the server trusts through ``apple_device_ca_file``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from sqlalchemy import select, update

from mdmserver.crypto.ca import fingerprint_sha256
from mdmserver.crypto.cms_sign import sign_attached, sign_detached
from mdmserver.enrollment.onetime import secret_hash
from mdmserver.storage.sql.schema import devices, scep_challenges
from mdmserver.testing.apple_device_pki import AppleDevicePki
from mdmserver.testing.device import VirtualDevice
from mdmserver.testing.enrollment import (
    device_attributes,
    post_attributes,
    profile_service,
    scep_challenge,
    scep_request,
    unwrap_profile,
)
from mdmserver.testing.http import send, snapshot
from mdmserver.testing.pki import TEST_TOPIC
from mdmserver.web.runtime import runtime

SERVER_URL = "https://mdm.example.test"  # what conftest's init wrote to config.toml


@pytest.fixture(scope="module")
def apple_pki() -> AppleDevicePki:
    return AppleDevicePki.create()


@pytest.fixture(scope="module")
def foreign_apple_pki() -> AppleDevicePki:
    """Same names and shape as the configured one, other keys: not Apple's."""
    return AppleDevicePki.create()


@pytest.fixture
def app_config(enroll_home: Path, database_url: str, apple_pki: AppleDevicePki, tmp_path: Path):
    from mdmserver.config import load_config

    bundle = tmp_path / "apple-device-ca.pem"
    bundle.write_bytes(apple_pki.bundle_pem())
    return load_config(
        environ={},
        overrides={
            "home": enroll_home,
            "database_url": database_url,
            "apple_device_ca_file": str(bundle),
            "auto_migrate": True,
            "log_level": "WARNING",
        },
    )


@pytest.fixture
def unchanged(enrollment):
    engine = enrollment.store.engine

    class Guard:
        def __enter__(self):
            self.before = snapshot(engine)
            return self

        def __exit__(self, *exc):
            if exc[0] is None:
                assert snapshot(engine) == self.before, "a refused request changed the database"

    return Guard


def _phase1(live_server: str, token: str, **params: str) -> requests.Response:
    return requests.get(f"{live_server}/mdm/enroll", params={"token": token, **params}, timeout=30)


def _challenge(live_server: str, token: str) -> str:
    reply = _phase1(live_server, token, ota="1")
    assert reply.status_code == 200, reply.text
    return profile_service(reply.content)["Challenge"]


def _signed(apple_pki: AppleDevicePki, udid: str, challenge: str, **kwargs: Any) -> bytes:
    return apple_pki.sign_attributes(
        device_attributes(udid, challenge), apple_pki.device_identity(udid), **kwargs
    )


def _udid() -> str:
    return f"00008110-{uuid.uuid4().hex[:16].upper()}"


def _ota_identity(live_server, token, udid, apple_pki, ca_cert) -> Any:
    """Phase 1, phase 2, SCEP: the identity our CA issues for `udid`."""
    reply = post_attributes(live_server, _signed(apple_pki, udid, _challenge(live_server, token)))
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"] == "application/x-apple-aspen-config"
    return scep_request(live_server, ca_cert, scep_challenge(unwrap_profile(reply.content)))


def _keys(app) -> dict[str, str]:
    api_keys = runtime(app).admin.api_keys
    return {s: api_keys.create(f"{s}-key", s, actor="test").key for s in ("admin", "trust")}


def _get(live_server: str, key: str, path: str) -> requests.Response:
    return requests.get(live_server + path, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_ota_enrollment_end_to_end(live_server, app, tokens, enrollment, ca_cert, apple_pki):
    new = tokens.create(uses=1, tags=["ota"])
    phase1 = _phase1(live_server, new.token, ota="1")
    assert phase1.status_code == 200, phase1.text
    assert phase1.headers["Content-Type"] == "application/x-apple-aspen-config"
    service = profile_service(phase1.content)
    assert service["URL"] == f"{SERVER_URL}/mdm/enroll/ota"
    assert {"UDID", "SERIAL", "PRODUCT", "VERSION", "IMEI", "MEID", "DEVICE_NAME"} <= set(
        service["DeviceAttributes"]
    )

    udid = _udid()
    body = _signed(apple_pki, udid, service["Challenge"])
    phase2 = post_attributes(live_server, body)
    assert phase2.status_code == 200, phase2.text
    challenge = scep_challenge(unwrap_profile(phase2.content))
    with enrollment.store.engine.connect() as conn:
        bound = conn.execute(select(scep_challenges).where(scep_challenges.c.device_id == udid))
        rows = bound.all()
        row = conn.execute(select(devices).where(devices.c.id == udid)).one()
    assert [(r.purpose, r.token_id, r.used_at) for r in rows] == [("ota", new.info.id, None)]
    # The device row the bound challenge names, from the attested attributes; not enrolled yet.
    assert (row.serial_number, row.product_name, row.enrolled) == (
        "C02TEST00001",
        "iPhone15,2",
        False,
    )

    attempt = scep_request(live_server, ca_cert, challenge)
    record = enrollment.store.issued(fingerprint_sha256(attempt.certificate))
    assert (record.device_id, record.token_id, record.method) == (udid, new.info.id, "ota")
    assert [t.uses for t in tokens.list()] == [1]

    device = VirtualDevice(
        certificate=attempt.certificate, key=attempt.key, topic=TEST_TOPIC, udid=udid
    )
    for request in (device.authenticate(), device.token_update(), device.idle()):
        assert send(live_server, request).status_code == 200
    # A device enrolled with a plain token profile, for contrast.
    plain = scep_request(
        live_server,
        ca_cert,
        scep_challenge(unwrap_profile(_phase1(live_server, tokens.create().token).content)),
    )
    other = VirtualDevice(certificate=plain.certificate, key=plain.key, topic=TEST_TOPIC)
    for request in (other.authenticate(), other.token_update()):
        assert send(live_server, request).status_code == 200

    keys = _keys(app)
    shown = _get(live_server, keys["admin"], f"/api/v1/devices/{udid}").json()
    assert (shown["identity"], shown["enrolled"], shown["tags"]) == ("attested", True, ["ota"])
    listed = _get(live_server, keys["admin"], "/api/v1/devices").json()["devices"]
    assert {d["id"]: d["identity"] for d in listed} == {udid: "attested", other.udid: "token"}
    trust = _get(live_server, keys["trust"], f"/api/v1/trust/devices/{udid}").json()
    assert trust["managed"] is True and trust["identity"] == "attested"
    trust = _get(live_server, keys["trust"], f"/api/v1/trust/devices/{other.udid}").json()
    assert trust["managed"] is True and trust["identity"] == "token"
    assertion = _get(live_server, keys["trust"], f"/api/v1/trust/devices/{udid}/assertion")
    claims = jwt.decode(assertion.json()["assertion"], options={"verify_signature": False})
    assert claims["identity"] == "attested"


def test_profile_service_verifies_with_openssl(live_server, tokens, enroll_home, tmp_path):
    import subprocess

    signed = tmp_path / "profile-service.mobileconfig"
    signed.write_bytes(_phase1(live_server, tokens.create().token, ota="1").content)
    out = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(signed),
         "-CAfile", str(enroll_home / "ca.pem"), "-purpose", "any"],
        capture_output=True,
        check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr.decode()
    assert b"<string>Profile Service</string>" in out.stdout


def test_mac_sends_only_its_certificate(live_server, tokens, ca_cert, apple_pki):
    """macOS posts no chain: the configured bundle's intermediates complete it."""
    challenge = _challenge(live_server, tokens.create().token)
    body = _signed(apple_pki, str(uuid.uuid4()).upper(), challenge, send_chain=False)
    reply = post_attributes(live_server, body)
    assert reply.status_code == 200, reply.text


def test_attributes_signed_outside_the_apple_bundle(
    live_server, tokens, pki, apple_pki, foreign_apple_pki, unchanged
):
    challenge = _challenge(live_server, tokens.create().token)
    udid = _udid()
    attributes = device_attributes(udid, challenge)
    mdm_identity = pki.identity("an MDM identity, not Apple's")
    with unchanged():
        for body in (
            _signed(foreign_apple_pki, udid, challenge),
            sign_attached(_plist(attributes), *mdm_identity, digest="sha1"),
        ):
            reply = post_attributes(live_server, body)
            assert reply.status_code == 403, reply.text
            assert "not signed by an Apple device identity" in reply.text
        expired = apple_pki.device_identity(udid, not_after=datetime.now(UTC) - timedelta(days=1))
        reply = post_attributes(live_server, apple_pki.sign_attributes(attributes, expired))
        assert reply.status_code == 403 and "not valid now" in reply.text
    # The challenge was not spent by the refused posts: the genuine device still enrolls.
    assert post_attributes(live_server, _signed(apple_pki, udid, challenge)).status_code == 200


def test_replayed_attributes_are_refused(live_server, tokens, apple_pki, unchanged):
    body = _signed(apple_pki, _udid(), _challenge(live_server, tokens.create().token))
    assert post_attributes(live_server, body).status_code == 200
    with unchanged():
        reply = post_attributes(live_server, body)
        assert reply.status_code == 403 and "already used" in reply.text


def test_concurrent_posts(live_server, tokens, enrollment, apple_pki):
    """One UDID enrolling through several challenges at once (the first creates its device row)
    all succeed; one body posted several times at once is accepted exactly once."""
    from concurrent.futures import ThreadPoolExecutor

    token = tokens.create().token
    udid = _udid()
    distinct = [_signed(apple_pki, udid, _challenge(live_server, token)) for _ in range(3)]
    same = _signed(apple_pki, _udid(), _challenge(live_server, token))
    with ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(
                lambda body: post_attributes(live_server, body).status_code,
                [*distinct, same, same, same],
            )
        )
    assert answers[:3] == [200, 200, 200]
    assert sorted(answers[3:]) == [200, 403, 403]
    with enrollment.store.engine.connect() as conn:
        bound = conn.execute(
            select(scep_challenges.c.id).where(scep_challenges.c.device_id == udid)
        )
        assert len(bound.all()) == 3


def test_profile_service_challenge_is_not_a_scep_challenge(
    live_server, tokens, apple_pki, ca_cert, unchanged
):
    """Nor a made-up challenge a profile-service one: each secret works in its own step."""
    from mdmserver.scep.message import PkiStatus

    challenge = _challenge(live_server, tokens.create().token)
    with unchanged():
        assert scep_request(live_server, ca_cert, challenge).result.status == PkiStatus.FAILURE
        reply = post_attributes(live_server, _signed(apple_pki, _udid(), "made-up"))
        assert reply.status_code == 403 and "unknown challenge" in reply.text


def test_attested_identity_cannot_authenticate_as_another_udid(
    live_server, app, tokens, ca_cert, apple_pki, unchanged
):
    victim_udid = _udid()
    victim_attempt = _ota_identity(
        live_server, tokens.create().token, victim_udid, apple_pki, ca_cert
    )
    victim = VirtualDevice(
        certificate=victim_attempt.certificate,
        key=victim_attempt.key,
        topic=TEST_TOPIC,
        udid=victim_udid,
    )
    for request in (victim.authenticate(), victim.token_update()):
        assert send(live_server, request).status_code == 200
    attacker_udid = _udid()
    stolen = _ota_identity(live_server, tokens.create().token, attacker_udid, apple_pki, ca_cert)
    impostor = VirtualDevice(
        certificate=stolen.certificate, key=stolen.key, topic=TEST_TOPIC, udid=victim.udid
    )
    with unchanged():
        reply = send(live_server, impostor.authenticate())
        assert reply.status_code == 403 and "issued to another device" in reply.text
        assert send(live_server, impostor.token_update()).status_code == 403
    # The identity still works for the UDID it was issued for.
    genuine = VirtualDevice(
        certificate=stolen.certificate, key=stolen.key, topic=TEST_TOPIC, udid=attacker_udid
    )
    assert send(live_server, genuine.authenticate()).status_code == 200


def test_require_ota_token_refuses_the_plain_profile(live_server, tokens, unchanged):
    required = tokens.create(require_ota=True)
    with unchanged():
        plain = _phase1(live_server, required.token)
        unknown = _phase1(live_server, "never-issued-token")
        assert plain.status_code == unknown.status_code == 403
        assert plain.text == unknown.text
        assert _phase1(live_server, required.token, ota="0").text == unknown.text
    assert profile_service(_phase1(live_server, required.token, ota="1").content)["Challenge"]

    default = tokens.create(ota=True)
    assert profile_service(_phase1(live_server, default.token).content)["Challenge"]
    plain_profile = unwrap_profile(_phase1(live_server, default.token, ota="0").content)
    assert plain_profile["PayloadType"] == "Configuration"


def _plist(attributes: dict[str, str]) -> bytes:
    import plistlib

    return plistlib.dumps(attributes)


MALFORMED = {
    "empty": (lambda pki, c: b"", 400),
    "unsigned plist": (lambda pki, c: _plist(device_attributes(_udid(), c)), 400),
    "garbage": (lambda pki, c: b"\x30\x82\x01\x00garbage", 403),
    "truncated": (lambda pki, c: _signed(pki, _udid(), c)[:-40], 403),
    "tampered": (lambda pki, c: _tampered(_signed(pki, _udid(), c)), 403),
    "detached": (lambda pki, c: _detached(pki, c), 403),
    "no UDID": (lambda pki, c: _signed_plist(pki, {"CHALLENGE": c}), 400),
    "UDID with colon": (lambda pki, c: _signed_plist(pki, device_attributes("a:b", c)), 400),
    "UDID with slash": (lambda pki, c: _signed_plist(pki, device_attributes("a/b", c)), 400),
    "UDID too long": (lambda pki, c: _signed_plist(pki, device_attributes("x" * 200, c)), 400),
    "serial too long": (
        lambda pki, c: _signed_plist(pki, device_attributes(_udid(), c, SERIAL="9" * 65)),
        400,
    ),
    "challenge not a string": (
        lambda pki, c: _signed_plist(pki, {"UDID": _udid(), "CHALLENGE": 5}),
        400,
    ),
    "content not a plist": (lambda pki, c: pki.sign_attributes_raw(b"not a plist"), 400),
}


def test_malformed_attribute_posts(live_server, tokens, apple_pki, unchanged):
    """Each gets a 4xx naming the problem, never a 500, and nothing is stored."""
    challenge = _challenge(live_server, tokens.create().token)
    signer = _RawSigner(apple_pki)
    with unchanged():
        for name, (make, status) in MALFORMED.items():
            reply = post_attributes(live_server, make(signer, challenge))
            assert (name, reply.status_code) == (name, status), reply.text
            assert reply.text.strip(), name
        assert post_attributes(live_server, b"\x30" * (200 * 1024)).status_code == 413


def test_without_apple_bundle_ota_is_unavailable(tmp_path, enroll_home, database_url, unchanged):
    from mdmserver.app import create_app
    from mdmserver.config import load_config
    from mdmserver.enrollment.service import EnrollmentTokens
    from mdmserver.testing.http import serve
    from mdmserver.web.runtime import runtime

    config = load_config(
        environ={},
        overrides={"home": enroll_home, "database_url": database_url, "log_level": "ERROR"},
    )
    app = create_app(config)
    token = EnrollmentTokens(runtime(app).enrollment.store).create().token
    try:
        with serve(app) as url:
            reply = _phase1(url, token, ota="1")
            assert reply.status_code == 503 and "apple_device_ca_file" in reply.text
            assert post_attributes(url, b"\x30\x00").status_code == 503
            assert _phase1(url, token).status_code == 200  # the plain profile still works
    finally:
        runtime(app).close()


class _RawSigner:
    """The configured Apple PKI, plus a way to sign content that is not an attributes plist."""

    def __init__(self, pki: AppleDevicePki) -> None:
        self.pki = pki

    def sign_attributes(self, attributes: dict[str, Any], identity: Any, **kw: Any) -> bytes:
        return self.pki.sign_attributes(attributes, identity, **kw)

    def device_identity(self, udid: str) -> Any:
        return self.pki.device_identity(udid)

    def sign_attributes_raw(self, content: bytes) -> bytes:
        cert, key = self.pki.device_identity(_udid())
        return sign_attached(content, cert, key, digest="sha1", chain=self.pki.intermediates)


def _signed_plist(signer: _RawSigner, attributes: dict[str, Any]) -> bytes:
    return signer.sign_attributes_raw(_plist(attributes))


def _tampered(body: bytes) -> bytes:
    at = body.find(b"<string>") + len(b"<string>")
    return body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1 :]


def _detached(signer: _RawSigner, challenge: str) -> bytes:
    cert, key = signer.device_identity(_udid())
    return sign_detached(_plist(device_attributes(_udid(), challenge)), cert, key, digest="sha1")


def test_profile_service_challenge_is_bound_to_a_usable_token(
    live_server, tokens, enrollment, apple_pki, unchanged
):
    revoked = tokens.create()
    body = _signed(apple_pki, _udid(), _challenge(live_server, revoked.token))
    assert tokens.revoke(revoked.info.id)
    used_up = tokens.create(uses=1)
    late = _signed(apple_pki, _udid(), _challenge(live_server, used_up.token))
    first = post_attributes(
        live_server, _signed(apple_pki, _udid(), _challenge(live_server, used_up.token))
    )
    scep_request(live_server, ca_cert_of(enrollment), scep_challenge(unwrap_profile(first.content)))
    stale = tokens.create()
    old = _challenge(live_server, stale.token)
    with enrollment.store.engine.begin() as conn:
        conn.execute(
            update(scep_challenges)
            .where(scep_challenges.c.id == secret_hash(old))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    with unchanged():
        for signed, reason in (
            (body, "revoked, expired or used up"),
            (late, "revoked, expired or used up"),
            (_signed(apple_pki, _udid(), old), "challenge expired"),
        ):
            reply = post_attributes(live_server, signed)
            assert reply.status_code == 403 and reason in reply.text, reply.text


def ca_cert_of(enrollment) -> Any:
    return enrollment.scep.ca_cert


def test_which_identities_prove_an_attested_udid():
    from mdmserver.service.certauth import udid_attested
    from mdmserver.storage.sql.enrollment_store import IssuedCert

    def issued(method: str, device_id: str | None = "A") -> IssuedCert:
        now = datetime.now(UTC)
        return IssuedCert("1", "f", "CN=x", now, now, False, None, device_id, method)

    assert udid_attested(issued("ota"), "A") is True
    assert udid_attested(issued("ota"), "B") is False  # (certauth refuses it anyway)
    assert udid_attested(issued("enroll"), "A") is False
    assert udid_attested(issued("enroll", None), "A") is False
    assert udid_attested(None, "A") is False  # another CA's identity
    assert udid_attested(issued("renew"), "A") is None  # a renewal keeps what the device had
    assert udid_attested(issued("renewalreq"), "A") is None


def test_enroll_token_create_ota_flags(tmp_path, database_url):
    from click.testing import CliRunner

    from mdmserver.cli import main
    from mdmserver.storage.sql.engine import make_engine
    from mdmserver.storage.sql.enrollment_store import EnrollmentStore

    env = {"MDM_HOME": str(tmp_path / "inst"), "MDM_DATABASE_URL": database_url}
    runner = CliRunner()
    ota = runner.invoke(main, ["enroll-token", "create", "--ota"], env=env)
    required = runner.invoke(main, ["enroll-token", "create", "--require-ota"], env=env)
    assert ota.exit_code == required.exit_code == 0, ota.output + required.output
    assert "/mdm/enroll?token=...&ota=1" in required.output
    engine = make_engine(database_url)
    try:
        store = EnrollmentStore(engine)
        flags = {
            (t.ota, t.require_ota)
            for t in (
                store.token_by_hash(secret_hash(r.output.split()[-1])) for r in (ota, required)
            )
        }
    finally:
        engine.dispose()
    assert flags == {(True, False), (False, True)}
    listed = runner.invoke(main, ["enroll-token", "list"], env=env).output
    assert "OTA" in listed and "default" in listed and "required" in listed


def test_admin_api_creates_ota_tokens(live_server, app, unchanged):
    key = _keys(app)["admin"]
    url = f"{live_server}/api/v1/enrollment-tokens"
    headers = {"Authorization": f"Bearer {key}"}
    created = requests.post(url, json={"ota": True}, headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    assert (created.json()["ota"], created.json()["require_ota"]) == (True, False)
    assert profile_service(_phase1(live_server, created.json()["token"]).content)["Challenge"]
    listed = requests.get(url, headers=headers, timeout=30).json()["tokens"]
    assert [t["ota"] for t in listed] == [True]
    refused = requests.post(url, json={"require_ota": "yes"}, headers=headers, timeout=30)
    assert refused.status_code == 400 and "require_ota" in refused.text
