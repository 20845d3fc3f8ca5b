"""PushClient through the real aioapns to the stand-in: payload, outcomes, threads, forks."""

from __future__ import annotations

import multiprocessing
import secrets
import threading
from collections import Counter
from collections.abc import Callable

import pytest

from mdmserver.push.apns_target import use_apns_endpoint
from mdmserver.push.cert import PushCertificateError
from mdmserver.push.client import (
    InvalidPushTarget,
    OutcomeKind,
    PushClient,
    PushClientClosed,
    PushConfig,
    PushTarget,
    close_clients,
    get_client,
)
from mdmserver.testing.apns_pki import Identity, make_ca
from mdmserver.testing.fake_apns import FakeAPNs


def test_delivered_push_carries_exactly_the_mdm_payload(
    push_client: PushClient, fake_apns: FakeAPNs, topic: str, new_token: Callable[[], str]
) -> None:
    token = new_token()
    magic = "6B3C1F6E-4F2B-4C53-9C38-2E0E1F0F4C11"
    [outcome] = push_client.push_many([PushTarget(token, magic, topic)])
    assert outcome.kind is OutcomeKind.DELIVERED
    assert (outcome.status, outcome.reason) == (200, None)
    records = [r for r in fake_apns.wait_for(lambda rs: any(r.token == token for r in rs))]
    [record] = [r for r in records if r.token == token]
    assert record.body == {"mdm": magic}
    assert record.topic == topic
    assert record.headers["apns-push-type"] == "mdm"
    assert record.apns_id == outcome.apns_id


@pytest.mark.parametrize(
    ("status", "reason", "kind"),
    [
        (410, "Unregistered", OutcomeKind.STALE_TOKEN),
        (410, "ExpiredToken", OutcomeKind.STALE_TOKEN),
        (400, "BadDeviceToken", OutcomeKind.STALE_TOKEN),
        (429, "TooManyRequests", OutcomeKind.RETRY),
        (500, "InternalServerError", OutcomeKind.RETRY),
        (503, "ServiceUnavailable", OutcomeKind.RETRY),
        (403, "BadCertificateEnvironment", OutcomeKind.CERTIFICATE_ERROR),
        (413, "PayloadTooLarge", OutcomeKind.REJECTED),
    ],
)
def test_apns_failures_are_classified(
    push_client: PushClient,
    fake_apns: FakeAPNs,
    topic: str,
    new_token: Callable[[], str],
    status: int,
    reason: str,
    kind: OutcomeKind,
) -> None:
    token = new_token()
    fake_apns.set_response(token, status, reason)
    [outcome] = push_client.push_many([PushTarget(token, "magic", topic)])
    assert (outcome.status, outcome.reason, outcome.kind) == (status, reason, kind)


def test_wrong_topic_is_a_certificate_error(
    push_client: PushClient, new_token: Callable[[], str], caplog: pytest.LogCaptureFixture
) -> None:
    target = PushTarget(new_token(), "magic", "com.apple.mgmt.External.not-ours")
    [outcome] = push_client.push_many([target])
    assert (outcome.status, outcome.reason) == (400, "TopicDisallowed")
    assert outcome.kind is OutcomeKind.CERTIFICATE_ERROR
    assert "certificate reasons" in caplog.text


def test_retry_after_scripted_failures(
    push_client: PushClient, fake_apns: FakeAPNs, topic: str, new_token: Callable[[], str]
) -> None:
    target = PushTarget(new_token(), "magic", topic)
    fake_apns.set_response(target.token_hex, 500, "InternalServerError", times=1)
    first = push_client.push_many([target])[0]
    second = push_client.push_many([target])[0]
    assert (first.kind, second.kind) == (OutcomeKind.RETRY, OutcomeKind.DELIVERED)


def test_client_certificate_from_another_ca_means_retry(
    make_client: Callable[..., PushClient],
    foreign_push_identity: Identity,
    topic: str,
    new_token: Callable[[], str],
) -> None:
    """APNs refusing the TLS handshake looks like a network failure: retry later (and alert)."""
    client = make_client(foreign_push_identity, topic, max_connection_attempts=2, timeout=10.0)
    [outcome] = client.push_many([PushTarget(new_token(), "magic", topic)])
    assert outcome.kind is OutcomeKind.RETRY
    assert (outcome.status, outcome.apns_id) == (None, None)
    assert outcome.reason in {"MaxAttemptsExceeded", "ConnectionClosed", "ConnectionError"}


def test_one_thousand_tokens_in_one_batch(
    push_client: PushClient, fake_apns: FakeAPNs, topic: str
) -> None:
    targets = [PushTarget(secrets.token_hex(32), f"magic-{i}", topic) for i in range(1000)]
    outcomes = push_client.push_many(targets)
    assert [o.target for o in outcomes] == targets
    assert Counter(o.kind for o in outcomes) == {OutcomeKind.DELIVERED: 1000}
    wanted = {t.token_hex: t.push_magic for t in targets}
    seen = fake_apns.wait_for(
        lambda rs: sum(r.token in wanted for r in rs) >= len(wanted), timeout=10
    )
    assert {r.token: r.body["mdm"] for r in seen if r.token in wanted} == wanted


def test_outcomes_come_chunk_by_chunk_in_order(
    push_client: PushClient, fake_apns: FakeAPNs, topic: str
) -> None:
    targets = [PushTarget(secrets.token_hex(32), f"magic-{i}", topic) for i in range(1000)]
    fake_apns.set_response(targets[420].token_hex, 410, "Unregistered")
    chunks = list(push_client.push_in_chunks(targets, 300))
    assert [len(chunk) for chunk in chunks] == [300, 300, 300, 100]
    outcomes = [o for chunk in chunks for o in chunk]
    assert [o.target for o in outcomes] == targets
    assert Counter(o.kind for o in outcomes) == {
        OutcomeKind.DELIVERED: 999,
        OutcomeKind.STALE_TOKEN: 1,
    }
    assert outcomes[420].kind is OutcomeKind.STALE_TOKEN
    assert len({o.apns_id for o in outcomes}) == 1000  # a fresh apns-id for every push
    with pytest.raises(ValueError, match="chunk_size"):
        push_client.push_in_chunks(targets, 0)


def test_many_error_answers_survive_aioapns_never_returning_window(
    push_client: PushClient, fake_apns: FakeAPNs, topic: str
) -> None:
    """aioapns never sends WINDOW_UPDATE; the stand-in recycles the connection (GOAWAY)."""
    targets = [PushTarget(secrets.token_hex(32), "magic", topic) for _ in range(3000)]
    for target in targets:
        fake_apns.set_response(target.token_hex, 410, "Unregistered")
    outcomes = push_client.push_many(targets)
    assert Counter(o.kind for o in outcomes) == {OutcomeKind.STALE_TOKEN: 3000}


def test_usable_from_different_threads_one_after_another(
    push_client: PushClient, topic: str, new_token: Callable[[], str]
) -> None:
    kinds: list[OutcomeKind] = []

    def push() -> None:
        kinds.extend(o.kind for o in push_client.push_many([PushTarget(new_token(), "m", topic)]))

    for _ in range(3):
        thread = threading.Thread(target=push)
        thread.start()
        thread.join(timeout=30)
    assert kinds == [OutcomeKind.DELIVERED] * 3


def test_concurrent_batches_from_two_threads(push_client: PushClient, topic: str) -> None:
    results: list[int] = []

    def push() -> None:
        targets = [PushTarget(secrets.token_hex(32), "m", topic) for _ in range(200)]
        results.append(sum(o.kind is OutcomeKind.DELIVERED for o in push_client.push_many(targets)))

    threads = [threading.Thread(target=push) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [200, 200]


def test_bad_input_raises_specific_errors(
    make_client: Callable[..., PushClient], push_identity: Identity, topic: str
) -> None:
    for token, magic, push_topic in [
        ("xyz", "m", topic),
        ("abc", "m", topic),
        ("", "m", topic),
        ("00ff", "", topic),
        ("00ff", "m", "topic with spaces"),
        ("00ff", None, topic),
    ]:
        with pytest.raises(InvalidPushTarget):
            PushTarget(token, magic, push_topic)  # type: ignore[arg-type]
    client = make_client(push_identity, topic)
    with pytest.raises(TypeError, match="PushTarget"):
        client.push_many(["00ff"])  # type: ignore[list-item]
    assert client.push_many([]) == []
    with pytest.raises(PushCertificateError, match="does not belong"):
        PushClient(push_identity.cert_pem, make_ca().key_pem, topic)
    with pytest.raises(ValueError, match="max_in_flight"):
        PushClient(push_identity.cert_pem, push_identity.key_pem, topic, max_in_flight=0)
    client.close()
    client.close()
    with pytest.raises(PushClientClosed):
        client.push_many([PushTarget("00ff", "m", topic)])


def _push_in_child(config: PushConfig, port: int, ca_pem: bytes, token: str, out: object) -> None:
    with use_apns_endpoint("127.0.0.1", port, ca_pem):
        client = get_client(config)
    [outcome] = client.push_many([PushTarget(token, "from-child", config.topic)])
    out.send(outcome.kind.value)  # type: ignore[attr-defined]


def test_get_client_is_per_process_and_fork_safe(
    fake_apns: FakeAPNs,
    apple_ca: Identity,
    push_identity: Identity,
    topic: str,
    new_token: Callable[[], str],
) -> None:
    config = PushConfig(push_identity.cert_pem, push_identity.key_pem, topic)
    with use_apns_endpoint("127.0.0.1", fake_apns.port, apple_ca.cert_pem):
        client = get_client(config)
        assert get_client(config) is client
    try:
        assert client.push_many([PushTarget(new_token(), "m", topic)])[0].kind == "delivered"
        # The parent's loop thread is running; a forked child must build its own.
        context = multiprocessing.get_context("fork")
        receiver, sender = context.Pipe(duplex=False)
        token = new_token()
        child = context.Process(
            target=_push_in_child, args=(config, fake_apns.port, apple_ca.cert_pem, token, sender)
        )
        child.start()
        assert receiver.poll(30), "the child never answered"
        assert receiver.recv() == "delivered"
        child.join(10)
        assert child.exitcode == 0
        assert client.push_many([PushTarget(new_token(), "m", topic)])[0].kind == "delivered"
    finally:
        close_clients()
    assert client.closed


def test_slow_answers_time_out_as_retry_without_breaking_the_connection(
    make_client: Callable[..., PushClient],
    push_identity: Identity,
    fake_apns: FakeAPNs,
    topic: str,
) -> None:
    client = make_client(push_identity, topic, timeout=0.0005)
    targets = [PushTarget(secrets.token_hex(32), "m", topic) for _ in range(50)]
    outcomes = client.push_many(targets)
    timed_out = [o for o in outcomes if o.reason == "Timeout"]
    assert timed_out and all(o.kind is OutcomeKind.RETRY for o in timed_out)
    # The abandoned sends still complete on the shared connection.
    wanted = {t.token_hex for t in targets}
    fake_apns.wait_for(lambda rs: wanted <= {r.token for r in rs}, timeout=10)
