"""The one atomic step of enrollment, under contention, on both databases."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from mdmserver.enrollment.onetime import new_secret, secret_hash
from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.engine import make_engine
from mdmserver.storage.sql.enrollment_store import EnrollmentStore, IssuedCert, SpendOutcome


def _cert(index: int) -> IssuedCert:
    now = datetime.now(UTC)
    return IssuedCert(
        serial=f"{index + 1:x}",
        fingerprint=f"{index:064x}",
        subject=f"CN=device {index}",
        not_after=now + timedelta(days=1),
        issued_at=now,
        revoked=False,
        token_id=None,
        device_id=None,
        method="enroll",
    )


def test_concurrent_spends_issue_once_per_challenge_and_use(database_url):
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    store = EnrollmentStore(engine)
    token = store.create_token(
        "t1", secret_hash(new_secret()), "abc", max_uses=3, expires_at=None, tags=()
    )
    later = datetime.now(UTC) + timedelta(hours=1)
    challenges = [secret_hash(new_secret()) for _ in range(6)]
    for challenge in challenges:
        store.create_challenge(challenge, purpose="enroll", expires_at=later, token_id=token.id)
    # Every challenge is tried by two racers; the token allows three certificates in all.
    attempts = [(c, i) for i, c in enumerate(challenges * 2)]
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda a: store.spend_challenge(a[0], _cert(a[1])), attempts))
    assert outcomes.count(SpendOutcome.ISSUED) == 3
    assert store.list_tokens()[0].uses == 3
    engine.dispose()
