"""Rate limits (issue 13): enrollment profiles per address and per token, SCEP PKIOperations
per address and per challenge or renewing certificate, failed admin-API authentications per
address. Each is answered 429 with Retry-After and counted across two app processes sharing
the database (or Redis); windows ending are shown once through HTTP (enrollment) and once on
the counters themselves (Redis), where a test clock moves on."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable

import pytest
import requests
from sqlalchemy import select

from mdmserver.crypto.ca import load_pem_certificates
from mdmserver.scep.message import MessageType, PkiStatus
from mdmserver.service.rate_limits import Limit, Limits, RateLimited, RateLimiter
from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.engine import make_engine
from mdmserver.storage.sql.ratelimit_store import Counters, RedisCounters, SQLCounters
from mdmserver.storage.sql.schema import rate_limits
from mdmserver.testing.device import VirtualDevice
from mdmserver.testing.enrollment import scep_challenge, scep_request, unwrap_profile
from mdmserver.testing.http import send
from mdmserver.testing.pki import TEST_TOPIC
from tests.jobs.conftest import queue_prefix, redis_available  # noqa: F401 (fixtures)
from tests.server.conftest import admin_api_key, enrollment_token

pytestmark = pytest.mark.filterwarnings("ignore:Unverified HTTPS request")

WINDOW = 4  # where a test waits for its window to end
LONG_WINDOW = 3600  # where it does not: a test's hits are all but certain to share one


def window_start() -> None:
    """Wait for a fresh window, so a test's hits all fall into one."""
    left = WINDOW - time.time() % WINDOW
    if left < WINDOW - 0.3:
        time.sleep(left + 0.05)


def assert_limited(reply: requests.Response, what: str, window: int = WINDOW) -> None:
    assert reply.status_code == 429, reply.text
    assert 1 <= int(reply.headers["Retry-After"]) <= window
    assert what in reply.text and "retry in" in reply.text


def enroll(url: str, token: str) -> requests.Response:
    return requests.get(f"{url}/mdm/enroll", params={"token": token}, verify=False, timeout=30)


def test_enrollment_limits_per_address_and_token_across_processes(
    start_server, serve_app, database_url
):
    settings = {
        "rate_limit_window_seconds": WINDOW,
        "rate_limit_enroll_per_address": 4,
        "rate_limit_enroll_per_token": 2,
    }
    process = start_server("procfile", workers=1, **settings).url  # the real served app
    local = serve_app(**settings)  # and another process's worth of app, in this one
    first, second, third = (enrollment_token(database_url) for _ in range(3))
    window_start()
    assert enroll(process, first).status_code == 200
    assert enroll(local, first).status_code == 200
    assert_limited(enroll(process, first), "enrollment profile requests for this token")
    assert enroll(local, second).status_code == 200  # another token: its own count
    # Four hits from this address so far (the refused one counted): the fifth is refused,
    # whichever token, on either process.
    assert_limited(enroll(local, third), "enrollment profile requests from this address")
    assert_limited(enroll(process, third), "enrollment profile requests from this address")
    time.sleep(int(enroll(local, third).headers["Retry-After"]) + 0.1)
    assert enroll(process, third).status_code == 200  # a new window


def test_scep_limits_per_address_and_per_credential(serve_app, database_url, instance_home):
    settings = {
        "rate_limit_window_seconds": LONG_WINDOW,
        "rate_limit_scep_per_address": 6,
        "rate_limit_scep_per_challenge": 2,
    }
    one, two = serve_app(**settings), serve_app(**settings)
    ca_cert = load_pem_certificates((instance_home / "ca.pem").read_bytes())[0]
    challenge = scep_challenge(unwrap_profile(enroll(one, enrollment_token(database_url)).content))
    issued = scep_request(one, ca_cert, challenge)
    assert issued.result is not None and issued.result.status == PkiStatus.SUCCESS
    # The spent challenge again: refused by SCEP, then by the per-challenge limit.
    again = scep_request(two, ca_cert, challenge)
    assert again.result is not None and again.result.status == PkiStatus.FAILURE
    limited = scep_request(one, ca_cert, challenge).response
    assert_limited(limited, "with this challenge", LONG_WINDOW)
    # RenewalReqs count per renewing certificate the same way (an identity renews once it is
    # the one an active enrollment is bound to).
    device = VirtualDevice(issued.certificate, issued.key, TEST_TOPIC)
    for request in (device.authenticate(), device.token_update()):
        assert send(one, request).status_code == 200
    signer = (issued.certificate, issued.key)
    renew = {"signer": signer, "message_type": MessageType.RenewalReq}
    renewed = scep_request(two, ca_cert, None, **renew)
    assert renewed.result is not None and renewed.result.status == PkiStatus.SUCCESS
    assert scep_request(one, ca_cert, None, **renew).response.status_code == 200
    limited = scep_request(two, ca_cert, None, **renew).response
    assert_limited(limited, "renewing certificate", LONG_WINDOW)
    # Six PKIOperations from this address so far: the seventh, even unreadable, is refused
    # before any decryption, by GET as by POST.
    refused = requests.get(
        f"{one}/scep",
        params={"operation": "PKIOperation", "message": base64.b64encode(b"junk").decode()},
        timeout=30,
    )
    assert_limited(refused, "SCEP certificate requests from this address", LONG_WINDOW)
    assert requests.get(f"{two}/scep", params={"operation": "GetCACaps"}, timeout=30).ok


def test_failed_api_authentications_per_address(serve_app, database_url):
    settings = {
        "rate_limit_window_seconds": LONG_WINDOW,
        "rate_limit_auth_failures_per_address": 3,
    }
    one, two = serve_app(**settings), serve_app(**settings)
    key = admin_api_key(database_url)

    def devices(url: str, api_key: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {api_key}"}
        return requests.get(f"{url}/api/v1/devices", headers=headers, timeout=30)

    assert devices(one, key).status_code == 200  # successes are not counted
    for url in (one, two, one):
        assert devices(url, "guess-" + uuid.uuid4().hex).status_code == 401
    refused = devices(two, "guess-" + uuid.uuid4().hex)
    assert_limited(refused, "failed API authentications from this address", LONG_WINDOW)
    assert refused.json()["error"].startswith("too many failed API authentications")
    # Refused before the key is looked at: a right guess now would look the same.
    assert_limited(devices(one, key), "failed API authentications from this address", LONG_WINDOW)


def shared_and_reset(make_counters: Callable[[], Counters]) -> None:
    """Two limiters (two processes' worth) on one store, with a clock the test moves."""
    limit = Limit("auth_failures", 2, "failed API authentications from this address")
    limits = Limits(limit, limit, limit, limit, limit)
    clock = [1_000_000.0]
    one, two = (RateLimiter(make_counters(), 10, limits, clock=lambda: clock[0]) for _ in "12")
    one.hit(limit, "192.0.2.1")
    two.hit(limit, "192.0.2.1")
    with pytest.raises(RateLimited) as refused:
        one.check(limit, "192.0.2.1")
    assert refused.value.retry_after == 10
    with pytest.raises(RateLimited):
        two.hit(limit, "192.0.2.1")
    two.check(limit, "192.0.2.2")  # another address has its own count
    clock[0] += 10  # the next window
    one.check(limit, "192.0.2.1")
    two.hit(limit, "192.0.2.1")


def test_database_counters_are_shared_and_reset(database_url):
    engines = []

    def counters() -> Counters:
        engines.append(make_engine(database_url))
        migrate.upgrade(engines[-1])
        return SQLCounters(engines[-1])

    try:
        shared_and_reset(counters)
        with engines[0].connect() as conn:
            windows = {row.window_start for row in conn.execute(select(rate_limits))}
        assert windows == {1_000_010}  # the finished window's rows were deleted
    finally:
        for engine in engines:
            engine.dispose()


def test_redis_counters_are_shared_and_reset(redis_available, queue_prefix):  # noqa: F811
    shared_and_reset(lambda: RedisCounters(redis_available, queue_prefix))
