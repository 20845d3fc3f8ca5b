"""The embedded default (no Redis): pushes and webhooks on in-process threads, end to end.

Devices talk to the real app over HTTP; pushes go through real aioapns to the stand-in.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mdmserver.jobs.signing import verify
from mdmserver.protocol.commands import new_command
from mdmserver.testing.fake_apns import FakeAPNs
from mdmserver.testing.http import command_of, send, serve
from mdmserver.testing.pki import TEST_TOPIC
from mdmserver.web.runtime import runtime
from tests.jobs.conftest import WebhookReceiver, wait_until


@pytest.fixture
def make_app(
    database_url: str, pki: Any, push_settings: dict[str, Any]
) -> Iterator[Callable[..., Any]]:
    from mdmserver.app import create_app
    from mdmserver.config import load_config

    apps = []

    def make(**overrides: Any) -> Any:
        config = load_config(
            environ={},
            overrides={
                "database_url": database_url,
                "push_topics": (TEST_TOPIC,),
                "ca_cert_file": str(pki.ca_file),
                "auto_migrate": True,
                "log_level": "WARNING",
                **push_settings,
                **overrides,
            },
        )
        app = create_app(config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        runtime(app).close()


def enroll(base: str, device: Any) -> None:
    assert send(base, device.authenticate()).status_code == 200
    assert send(base, device.token_update()).status_code == 200


def pushes_to(fake_apns: FakeAPNs, token: str) -> list[Any]:
    return [r for r in list(fake_apns.received) if r.token == token]


def test_enqueue_then_push_reaches_the_device_token(make_app, pki, fake_apns):
    app = make_app()
    rt = runtime(app)
    assert rt.jobs.backend.name == "inprocess"
    device = pki.device()
    with serve(app) as base:
        enroll(base, device)
        command = new_command("ProfileList")
        rt.storage.enqueue(command, [device.udid])
        assert rt.pusher.request_push([device.udid]) == 1
        token = device.push_token.hex()
        fake_apns.wait_for(lambda rs: any(r.token == token for r in rs), timeout=15)
        [record] = pushes_to(fake_apns, token)
        assert record.body == {"mdm": device.push_magic}
        assert record.topic == TEST_TOPIC
        assert record.headers["apns-push-type"] == "mdm"
        status = wait_until(lambda: rt.pusher.enrollment_status(device.udid), what="status")
        assert status["last_outcome"] == "delivered"
        assert rt.pusher.status()["outbox_pending"] == 0


def test_unregistered_token_is_marked_stale_until_the_next_token_update(make_app, pki, fake_apns):
    app = make_app()
    rt = runtime(app)
    device = pki.device()
    token = device.push_token.hex()
    fake_apns.set_response(token, 410, "Unregistered", times=1)
    with serve(app) as base:
        enroll(base, device)
        rt.pusher.request_push([device.udid])
        wait_until(lambda: rt.storage.enrollment(device.udid).token_stale, what="token_stale")
        assert rt.pusher.enrollment_status(device.udid)["last_outcome"] == "stale_token"
        assert len(pushes_to(fake_apns, token)) == 1

        rt.pusher.request_push([device.udid])  # a stale token is not pushed to again
        wait_until(lambda: rt.pusher.status()["outbox_pending"] == 0, what="outbox drained")
        time.sleep(0.5)
        assert len(pushes_to(fake_apns, token)) == 1

        assert send(base, device.token_update()).status_code == 200  # the device speaks again
        assert rt.storage.enrollment(device.udid).token_stale is False
        rt.pusher.request_push([device.udid])
        wait_until(lambda: len(pushes_to(fake_apns, token)) == 2, what="second push")
        assert pushes_to(fake_apns, token)[-1].status == 200


def test_too_many_requests_is_retried_then_delivered(make_app, pki, fake_apns):
    app = make_app()
    rt = runtime(app)
    device = pki.device()
    token = device.push_token.hex()
    fake_apns.set_response(token, 429, "TooManyRequests", times=2)
    with serve(app) as base:
        enroll(base, device)
        rt.pusher.request_push([device.udid])
        records = wait_until(
            lambda: [r for r in pushes_to(fake_apns, token) if r.status == 200],
            timeout=20,
            what="delivery after 429s",
        )
        statuses = [r.status for r in pushes_to(fake_apns, token)]
        assert statuses == [429, 429, 200]
        assert records[0].body == {"mdm": device.push_magic}
        times = [r.received_at for r in pushes_to(fake_apns, token)]
        assert times[1] - times[0] >= 0.9  # backed off (1 s, then 4 s with base 1)
        wait_until(
            lambda: rt.pusher.enrollment_status(device.udid)["last_outcome"] == "delivered",
            what="delivered recorded",
        )


def test_pending_command_without_a_push_request_is_found_by_the_scan(make_app, pki, fake_apns):
    app = make_app(repush_interval_seconds=1, repush_max_attempts=2)
    rt = runtime(app)
    device = pki.device()
    token = device.push_token.hex()
    with serve(app) as base:
        enroll(base, device)
        rt.storage.enqueue(new_command("ProfileList"), [device.udid])  # nobody asks for a push
        wait_until(lambda: pushes_to(fake_apns, token), timeout=20, what="scan push")
        # The device stays silent: re-pushed with back-off, at most repush_max_attempts times.
        wait_until(lambda: len(pushes_to(fake_apns, token)) >= 3, timeout=20, what="re-pushes")
        time.sleep(5)
        assert len(pushes_to(fake_apns, token)) == 3
        assert rt.pusher.enrollment_status(device.udid)["attempts"] == 2


def test_webhooks_are_signed_and_carry_the_raw_message(make_app, pki, webhook_receiver):
    secret = "s3cret-for-tests"
    app = make_app(webhook_urls=(webhook_receiver.url,), webhook_secret=secret)
    device = pki.device()
    with serve(app) as base:
        enroll(base, device)
        runtime(app).storage.enqueue(new_command("ProfileList"), [device.udid])
        # Answer the first command the device gets (features may queue their own at enrollment).
        command_uuid = command_of(send(base, device.idle()))["CommandUUID"]
        answer = device.result("Acknowledged", command_uuid, ProfileList=[])
        assert send(base, answer).status_code == 200
        webhook_receiver.wait_for(lambda rs: len(rs) >= 3)
    for item in webhook_receiver.received:
        assert verify(secret.encode(), item.headers, item.body)
        assert not verify(b"wrong", item.headers, item.body)
        assert not verify(secret.encode(), item.headers, item.body + b" ")
    events = webhook_receiver.events()
    checkins = [e for e in events if e["type"] == "mdm.checkin"]
    assert [e["message_type"] for e in checkins] == ["Authenticate", "TokenUpdate"]
    [result] = [e for e in events if e["type"] == "mdm.command_result"]
    assert result["status"] == "Acknowledged"
    assert result["command_uuid"] == command_uuid
    assert result["enrollment_id"] == result["device_id"] == device.udid
    assert base64.b64decode(result["raw_payload"]) == answer.body
    assert result["timestamp"].endswith("Z")


def test_webhook_receiver_down_is_retried_and_devices_are_not_slowed(
    make_app, pki, webhook_receiver: WebhookReceiver
):
    webhook_receiver.status = 503
    app = make_app(webhook_urls=(webhook_receiver.url,), webhook_secret="x")
    device = pki.device()
    with serve(app) as base:
        started = time.perf_counter()
        enroll(base, device)
        for _ in range(5):
            assert send(base, device.idle()).status_code == 200
        elapsed = time.perf_counter() - started
        assert elapsed < 2.0, f"device requests took {elapsed:.2f}s with the receiver down"
        wait_until(lambda: webhook_receiver.attempts >= 2, what="failed attempts")
        webhook_receiver.status = 200
        webhook_receiver.wait_for(lambda rs: len(rs) >= 2, timeout=30)
    kinds = sorted(e["message_type"] for e in webhook_receiver.events())
    assert kinds == ["Authenticate", "TokenUpdate"]


def test_a_command_sent_through_the_api_pushes_its_targets(make_app, pki, fake_apns):
    """An admin's command is useless until APNs wakes the device: sending one requests a push."""
    from tests.api.conftest import make_key

    app = make_app()
    device = pki.device()
    with serve(app) as base:
        enroll(base, device)
        key = make_key(app, "ops")
        fake_apns.clear()
        reply = app.test_client().post(
            "/api/v1/commands",
            json={"targets": [device.udid], "command": {"RequestType": "ProfileList"}},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert reply.status_code == 201, reply.get_json()
        token = device.push_token.hex()
        fake_apns.wait_for(lambda rs: any(r.token == token for r in rs), timeout=15)
        assert pushes_to(fake_apns, token)[0].body == {"mdm": device.push_magic}
        # The woken device finds the command waiting (after anything enrollment queued).
        received, answer = [], send(base, device.idle())
        while answer.content:
            uuid = command_of(answer)["CommandUUID"]
            received.append(uuid)
            answer = send(base, device.result("Acknowledged", uuid))
        assert reply.get_json()["command_uuid"] in received
