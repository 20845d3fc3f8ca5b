"""The APNs stand-in on its own: TLS client authentication, Apple's checks, scripting, listeners."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable

import pytest
from apns_probe import client_context, request

from mdmserver.testing.apns_pki import Identity
from mdmserver.testing.fake_apns import FakeAPNs, FakeAPNsError, PushRecord


@pytest.fixture(scope="module")
def context(apple_ca: Identity, push_identity: Identity) -> ssl.SSLContext:
    return client_context(apple_ca.cert_pem, push_identity)


def mdm_headers(topic: str, **extra: str) -> list[tuple[str, str]]:
    headers = [("apns-topic", topic), ("apns-push-type", "mdm")]
    return headers + [(name.replace("_", "-"), value) for name, value in extra.items()]


def test_accepts_mdm_push_without_alpn_and_echoes_apns_id(
    fake_apns: FakeAPNs, context: ssl.SSLContext, topic: str, new_token: Callable[[], str]
) -> None:
    token = new_token()
    apns_id = "0d9e2f52-8a3e-4b1e-9f00-5c1d2e3f4a5b"
    answer = request(
        fake_apns.port,
        context,
        path=f"/3/device/{token}",
        headers=mdm_headers(topic, apns_id=apns_id, apns_priority="10", apns_expiration="0"),
        body=b'{"mdm":"magic"}',
    )
    assert (answer.status, answer.headers["apns-id"], answer.body) == (200, apns_id, b"")
    record = fake_apns.wait_for(lambda rs: any(r.token == token for r in rs))[-1]
    assert record.body == {"mdm": "magic"}
    assert record.headers["apns-priority"] == "10"
    assert record.client_topic == topic


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "reason"),
    [
        ("GET", "/3/device/{token}", "mdm", b"", 405, "MethodNotAllowed"),
        ("POST", "/2/device/{token}", "mdm", b"{}", 404, "BadPath"),
        ("POST", "/3/device/", "mdm", b"{}", 400, "MissingDeviceToken"),
        ("POST", "/3/device/not-hex", "mdm", b"{}", 400, "BadDeviceToken"),
        ("POST", "/3/device/{token}", "none", b"{}", 400, "MissingTopic"),
        ("POST", "/3/device/{token}", "other-topic", b"{}", 400, "TopicDisallowed"),
        ("POST", "/3/device/{token}", "bad-type", b"{}", 400, "InvalidPushType"),
        ("POST", "/3/device/{token}", "bad-priority", b"{}", 400, "BadPriority"),
        ("POST", "/3/device/{token}", "bad-id", b"{}", 400, "BadMessageId"),
        ("POST", "/3/device/{token}", "bad-expiry", b"{}", 400, "BadExpirationDate"),
        ("POST", "/3/device/{token}", "mdm", b"", 400, "PayloadEmpty"),
        ("POST", "/3/device/{token}", "mdm", b"{" + b" " * 5000 + b"}", 413, "PayloadTooLarge"),
        ("POST", "/3/device/{token}", "mdm", b"not json", 400, "BadPayload"),
    ],
)
def test_validates_like_apple(
    fake_apns: FakeAPNs,
    context: ssl.SSLContext,
    topic: str,
    new_token: Callable[[], str],
    method: str,
    path: str,
    headers: str,
    body: bytes,
    status: int,
    reason: str,
) -> None:
    header_sets = {
        "mdm": mdm_headers(topic),
        "none": [("apns-push-type", "mdm")],
        "other-topic": mdm_headers("com.apple.mgmt.External.someone-else"),
        "bad-type": [("apns-topic", topic), ("apns-push-type", "carrier-pigeon")],
        "bad-priority": mdm_headers(topic, apns_priority="7"),
        "bad-id": mdm_headers(topic, apns_id="not-a-uuid"),
        "bad-expiry": mdm_headers(topic, apns_expiration="tomorrow"),
    }
    answer = request(
        fake_apns.port,
        context,
        method=method,
        path=path.format(token=new_token()),
        headers=header_sets[headers],
        body=body,
    )
    assert answer.status == status
    assert json.loads(answer.body) == {"reason": reason}
    assert answer.headers["apns-id"]


def test_unregistered_carries_a_millisecond_timestamp(
    fake_apns: FakeAPNs, context: ssl.SSLContext, topic: str, new_token: Callable[[], str]
) -> None:
    token = new_token()
    fake_apns.set_response(token, 410, "Unregistered")
    answer = request(
        fake_apns.port, context, path=f"/3/device/{token}", headers=mdm_headers(topic), body=b"{}"
    )
    body = json.loads(answer.body)
    assert (answer.status, body["reason"]) == (410, "Unregistered")
    assert body["timestamp"] > 1_600_000_000_000


def test_scripted_failure_then_success(
    fake_apns: FakeAPNs, context: ssl.SSLContext, topic: str, new_token: Callable[[], str]
) -> None:
    token = new_token()
    fake_apns.set_response(token, 503, "ServiceUnavailable", times=2)

    def push() -> int:
        path = f"/3/device/{token}"
        return request(
            fake_apns.port, context, path=path, headers=mdm_headers(topic), body=b"{}"
        ).status

    assert [push(), push(), push()] == [503, 503, 200]


@pytest.mark.parametrize("use_foreign_cert", [False, True])
def test_handshake_needs_a_client_certificate_from_the_configured_ca(
    fake_apns: FakeAPNs,
    apple_ca: Identity,
    foreign_push_identity: Identity,
    topic: str,
    use_foreign_cert: bool,
) -> None:
    identity = foreign_push_identity if use_foreign_cert else None
    context = client_context(apple_ca.cert_pem, identity)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        request(fake_apns.port, context, path="/3/device/00ff", headers=mdm_headers(topic))


def test_on_push_wakes_only_for_accepted_pushes_to_that_token(
    fake_apns: FakeAPNs, context: ssl.SSLContext, topic: str, new_token: Callable[[], str]
) -> None:
    token, other = new_token(), new_token()
    woken: list[PushRecord] = []
    event = threading.Event()

    def wake(record: PushRecord) -> None:
        woken.append(record)
        event.set()

    fake_apns.on_push(token, wake)
    fake_apns.set_response(token, 429, "TooManyRequests", times=1)
    for target in (token, other, token):
        path = f"/3/device/{target}"
        request(fake_apns.port, context, path=path, headers=mdm_headers(topic), body=b"{}")
    assert event.wait(5)
    assert [(r.token, r.status) for r in woken] == [(token, 200)]


def test_wait_for_times_out_and_rejects_nonsense(fake_apns: FakeAPNs) -> None:
    with pytest.raises(TimeoutError):
        fake_apns.wait_for(lambda records: False, timeout=0.05)
    with pytest.raises(TypeError):
        fake_apns.wait_for("three", timeout=0.05)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        fake_apns.wait_for(-1)


@pytest.mark.parametrize(
    ("status", "reason", "times"),
    [(200, "Fine", None), (410, "", None), (500, "InternalServerError", 0), (True, "x", None)],
)
def test_set_response_rejects_bad_scripts(
    fake_apns: FakeAPNs, status: int, reason: str, times: int | None
) -> None:
    with pytest.raises(ValueError):
        fake_apns.set_response("00ff", status, reason, times)


def test_lifecycle_errors_are_specific(
    apple_ca: Identity, server_identity: Identity, fake_apns: FakeAPNs
) -> None:
    with pytest.raises(ValueError, match="unusable"):
        FakeAPNs(ca_pem=b"junk", cert_pem=server_identity.cert_pem, key_pem=server_identity.key_pem)
    second = FakeAPNs(
        ca_pem=apple_ca.cert_pem,
        cert_pem=server_identity.cert_pem,
        key_pem=server_identity.key_pem,
        port=fake_apns.port,
    )
    with pytest.raises(FakeAPNsError, match="cannot listen"):
        second.start()
    with FakeAPNs(
        ca_pem=apple_ca.cert_pem,
        cert_pem=server_identity.cert_pem,
        key_pem=server_identity.key_pem,
    ) as third:
        assert third.port > 0
        with pytest.raises(FakeAPNsError, match="already started"):
            third.start()
    third.stop()  # idempotent
