"""One test per attack on enrollment: each asserts the answer and that nothing was issued."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy import update

from mdmserver.crypto.ca import generate_key, issue_certificate, load_private_key
from mdmserver.enrollment.onetime import new_secret, secret_hash
from mdmserver.enrollment.service import UNUSABLE_TOKEN
from mdmserver.scep.errors import FailInfo
from mdmserver.scep.message import MessageType, PkiStatus
from mdmserver.storage.sql.schema import enroll_tokens, scep_challenges
from mdmserver.testing.enrollment import post_pki, scep_challenge, scep_request, unwrap_profile
from mdmserver.testing.http import snapshot
from mdmserver.testing.scep_client import build_pkcs_req, make_csr, self_signed_for_scep

UNUSABLE = UNUSABLE_TOKEN + "\n"


@pytest.fixture
def unchanged(enrollment):
    """A context manager asserting the database is exactly as it was when it was entered."""
    engine = enrollment.store.engine

    class Guard:
        def __enter__(self):
            self.before = snapshot(engine)
            return self

        def __exit__(self, *exc):
            if exc[0] is None:
                assert snapshot(engine) == self.before, "a refused request changed the database"

    return Guard


def _download(live_server: str, token: str) -> requests.Response:
    return requests.get(f"{live_server}/mdm/enroll", params={"token": token}, timeout=30)


def _challenge(live_server: str, token: str) -> str:
    reply = _download(live_server, token)
    assert reply.status_code == 200, reply.text
    return scep_challenge(unwrap_profile(reply.content))


def _assert_failed(attempt, fail_info: FailInfo) -> None:
    assert attempt.response.status_code == 200, attempt.response.text
    assert attempt.result.status == PkiStatus.FAILURE
    assert attempt.result.fail_info == fail_info
    assert attempt.result.certificate is None


def test_reused_challenge(live_server, tokens, ca_cert, unchanged):
    challenge = _challenge(live_server, tokens.create().token)
    assert scep_request(live_server, ca_cert, challenge).result.status == PkiStatus.SUCCESS
    with unchanged():
        _assert_failed(scep_request(live_server, ca_cert, challenge), FailInfo.badRequest)


def test_wrong_and_missing_challenge(live_server, tokens, ca_cert, unchanged):
    _challenge(live_server, tokens.create().token)
    with unchanged():
        _assert_failed(scep_request(live_server, ca_cert, new_secret()), FailInfo.badRequest)
        _assert_failed(scep_request(live_server, ca_cert, None), FailInfo.badRequest)


def test_expired_challenge(live_server, tokens, enrollment, ca_cert, unchanged):
    challenge = _challenge(live_server, tokens.create().token)
    with enrollment.store.engine.begin() as conn:
        conn.execute(
            update(scep_challenges)
            .where(scep_challenges.c.id == secret_hash(challenge))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    with unchanged():
        _assert_failed(scep_request(live_server, ca_cert, challenge), FailInfo.badRequest)


def test_tampered_pki_operation(live_server, tokens, ca_cert, unchanged):
    challenge = _challenge(live_server, tokens.create().token)
    key = generate_key("rsa")
    csr = make_csr(key, "tampered", challenge)
    body, _, _ = build_pkcs_req(csr, self_signed_for_scep(key, "tampered"), key, ca_cert)
    # Flip one byte of the encrypted CSR (it sits in the middle of the signed content).
    middle = len(body) // 3
    tampered = body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]
    with unchanged():
        reply = post_pki(live_server, tampered)
        assert reply.status_code in (200, 400)
        if reply.status_code == 200:
            assert reply.headers["Content-Type"] == "application/x-pki-message"
            from mdmserver.testing.scep_client import parse_cert_rep

            result = parse_cert_rep(reply.content, ca_cert, key)
            assert result.status == PkiStatus.FAILURE and result.certificate is None
        for garbage in (body[: len(body) // 2], b"not a PKIOperation"):
            reply = post_pki(live_server, garbage)
            assert reply.status_code == 400, reply.text
        reply = requests.get(
            f"{live_server}/scep",
            params={"operation": "PKIOperation", "message": "%%%not base64"},
            timeout=30,
        )
        assert reply.status_code == 400
    # The genuine message still works: the challenge was not burnt by the tampered one.
    assert post_pki(live_server, body).status_code == 200


def _expire(enrollment, token_id: str) -> None:
    with enrollment.store.engine.begin() as conn:
        conn.execute(
            update(enroll_tokens)
            .where(enroll_tokens.c.id == token_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def test_expired_token(live_server, tokens, enrollment, ca_cert, unchanged):
    new = tokens.create(lifetime=timedelta(hours=1))
    challenge = _challenge(live_server, new.token)
    _expire(enrollment, new.info.id)
    with unchanged():
        reply = _download(live_server, new.token)
        assert (reply.status_code, reply.text) == (403, UNUSABLE)
        _assert_failed(scep_request(live_server, ca_cert, challenge), FailInfo.badRequest)


def test_revoked_token(live_server, tokens, ca_cert, unchanged):
    new = tokens.create()
    challenge = _challenge(live_server, new.token)
    assert tokens.revoke(new.info.id)
    with unchanged():
        reply = _download(live_server, new.token)
        assert (reply.status_code, reply.text) == (403, UNUSABLE)
        _assert_failed(scep_request(live_server, ca_cert, challenge), FailInfo.badRequest)


def test_used_up_token_enrolls_one_device_only(live_server, tokens, ca_cert, unchanged):
    new = tokens.create(uses=1)
    first, second = _challenge(live_server, new.token), _challenge(live_server, new.token)
    assert scep_request(live_server, ca_cert, first).result.status == PkiStatus.SUCCESS
    with unchanged():
        _assert_failed(scep_request(live_server, ca_cert, second), FailInfo.badRequest)
        reply = _download(live_server, new.token)
        assert (reply.status_code, reply.text) == (403, UNUSABLE)


def test_unknown_or_missing_token(live_server, unchanged):
    with unchanged():
        reply = _download(live_server, new_secret())
        assert (reply.status_code, reply.text) == (403, UNUSABLE)
        reply = _download(live_server, "x" * 5000)
        assert (reply.status_code, reply.text) == (403, UNUSABLE)
        reply = requests.get(f"{live_server}/mdm/enroll", timeout=30)
        assert reply.status_code == 400


def test_one_answer_for_every_unusable_token(live_server, tokens, enrollment, unchanged, caplog):
    """No oracle: unknown, revoked, expired, used-up and oversized tokens get the same status,
    body and headers; only the server log says which it was (issue 13 item 5)."""
    revoked = tokens.create()
    assert tokens.revoke(revoked.info.id)
    expired = tokens.create(lifetime=timedelta(hours=1))
    _expire(enrollment, expired.info.id)
    used = tokens.create(uses=1)
    with enrollment.store.engine.begin() as conn:
        conn.execute(update(enroll_tokens).where(enroll_tokens.c.id == used.info.id).values(uses=1))
    cases = {
        "unknown": new_secret(),
        "revoked": revoked.token,
        "expired": expired.token,
        "used up": used.token,
        "too long": "x" * 5000,
    }
    caplog.set_level("INFO", logger="mdmserver.enrollment")
    answers = set()
    with unchanged():
        for token in cases.values():
            reply = _download(live_server, token)
            answers.add((reply.status_code, reply.text, reply.headers["Content-Type"]))
    assert answers == {(403, UNUSABLE, "text/plain; charset=utf-8")}
    logged = [r.fields["reason"] for r in caplog.records if r.getMessage() == "enroll_refused"]
    assert logged == list(cases)


def test_renewal_signed_by_certificate_we_did_not_issue(
    live_server, pki, enroll_home, ca_cert, unchanged
):
    foreign = pki.identity("someone else's device")
    ca_key = load_private_key((enroll_home / "ca.key").read_bytes())
    # Signed by our CA key but never recorded: not "a certificate this server issued".
    key = generate_key("rsa")
    unrecorded = issue_certificate(
        ca_cert,
        ca_key,
        key.public_key(),
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "minted")]),
        lifetime=timedelta(days=30),
        client_auth=True,
    )
    with unchanged():
        renewal = MessageType.RenewalReq
        attempt = scep_request(live_server, ca_cert, None, signer=foreign, message_type=renewal)
        _assert_failed(attempt, FailInfo.badMessageCheck)
        own_key = generate_key("rsa")
        self_signed = (self_signed_for_scep(own_key, "me"), own_key)
        attempt = scep_request(live_server, ca_cert, None, signer=self_signed, message_type=renewal)
        _assert_failed(attempt, FailInfo.badMessageCheck)
        attempt = scep_request(
            live_server, ca_cert, None, signer=(unrecorded, key), message_type=renewal
        )
        _assert_failed(attempt, FailInfo.badCertId)


def test_weak_csr_key_is_refused(live_server, tokens, ca_cert, unchanged):
    from cryptography.hazmat.primitives.asymmetric import rsa

    challenge = _challenge(live_server, tokens.create().token)
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with unchanged():
        _assert_failed(scep_request(live_server, ca_cert, challenge, key=weak), FailInfo.badAlg)
