"""Pushes and webhooks through real Redis and a real ``mdmserver worker`` process (RQ's
SimpleWorker with its scheduler), to the APNs stand-in over real TLS."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mdmserver.jobs.signing import verify
from mdmserver.protocol.commands import new_command
from mdmserver.testing.fake_apns import FakeAPNs
from mdmserver.testing.http import send, serve
from mdmserver.testing.pki import TEST_TOPIC
from mdmserver.web.runtime import runtime
from tests.jobs.conftest import REDIS_URL, free_port, wait_until


@pytest.fixture
def rq_settings(
    tmp_path: Path, pki: Any, push_settings: dict[str, Any], queue_prefix: str
) -> dict[str, Any]:
    """Settings shared by the app (in this process) and the worker (another process)."""
    return {
        **push_settings,
        "database_url": f"sqlite:///{tmp_path / 'shared.db'}",
        "redis_url": REDIS_URL,
        "queue_prefix": queue_prefix,
        "push_topics": (TEST_TOPIC,),
        "ca_cert_file": str(pki.ca_file),
        "auto_migrate": True,
    }


@pytest.fixture
def make_app() -> Iterator[Callable[..., Any]]:
    from mdmserver.app import create_app
    from mdmserver.config import load_config

    apps = []

    def make(settings: dict[str, Any]) -> Any:
        app = create_app(load_config(environ={}, overrides={**settings, "log_level": "WARNING"}))
        apps.append(app)
        return app

    yield make
    for app in apps:
        runtime(app).close()


def enroll(base: str, device: Any, fake_apns: FakeAPNs | None = None) -> None:
    """Enroll; with ``fake_apns``, also wait for the push of what enrollment queued
    (inventory), so a test can count only the pushes after it (``pushes_to(..., since)``)."""
    assert send(base, device.authenticate()).status_code == 200
    assert send(base, device.token_update()).status_code == 200
    if fake_apns is not None:
        token = device.push_token.hex()
        fake_apns.wait_for(lambda rs: any(r.token == token for r in rs), timeout=30)


def pushes_to(fake_apns: FakeAPNs, token: str, since: float = 0.0) -> list[Any]:
    return [r for r in list(fake_apns.received) if r.token == token and r.received_at > since]


def test_worker_process_pushes_the_enqueued_command(
    rq_settings, make_app, start_worker, pki, fake_apns
):
    app = make_app(rq_settings)
    rt = runtime(app)
    assert rt.jobs.backend.name == "rq"
    worker = start_worker(rq_settings)
    devices = [pki.device() for _ in range(3)]
    with serve(app) as base:
        for device in devices:
            enroll(base, device, fake_apns)
        wait_until(lambda: rt.pusher.status()["outbox_pending"] == 0, what="enrollment pushed")
        since = time.time()
        command = new_command("ProfileList")
        ids = [d.udid for d in devices]
        rt.storage.inner.enqueue(command, ids)  # the admin's way: enqueue, then request_push
        assert rt.pusher.request_push(ids) == 3
        tokens = {d.push_token.hex(): d for d in devices}
        fake_apns.wait_for(
            lambda rs: tokens.keys() <= {r.token for r in rs if r.received_at > since}, timeout=30
        )
    for token, device in tokens.items():
        [record] = pushes_to(fake_apns, token, since)
        assert record.body == {"mdm": device.push_magic}
        assert record.topic == TEST_TOPIC
    wait_until(
        lambda: (
            rt.pusher.status()["by_outcome"].get("delivered") == 3
            and rt.pusher.status()["outbox_pending"] == 0
        ),
        what="outcomes stored",
    )
    assert '"event":"push_batch"' in worker.output()
    assert worker.process.poll() is None


def test_worker_marks_410_stale_and_retries_429(
    rq_settings, make_app, start_worker, pki, fake_apns
):
    app = make_app(rq_settings)
    rt = runtime(app)
    start_worker(rq_settings)
    gone, busy = pki.device(), pki.device()
    with serve(app) as base:
        enroll(base, gone, fake_apns)
        enroll(base, busy, fake_apns)
        fake_apns.set_response(gone.push_token.hex(), 410, "Unregistered", times=1)
        fake_apns.set_response(busy.push_token.hex(), 429, "TooManyRequests", times=1)
        wait_until(lambda: rt.pusher.status()["outbox_pending"] == 0, what="enrollment pushed")
        since = time.time()
        rt.pusher.request_push([gone.udid, busy.udid])
        wait_until(lambda: rt.storage.enrollment(gone.udid).token_stale, timeout=30, what="stale")
        records = wait_until(
            lambda: [
                r for r in pushes_to(fake_apns, busy.push_token.hex(), since) if r.status == 200
            ],
            timeout=30,
            what="429 retried (RQ scheduler)",
        )
        assert records[0].body == {"mdm": busy.push_magic}
        assert [r.status for r in pushes_to(fake_apns, busy.push_token.hex(), since)] == [429, 200]

        rt.pusher.request_push([gone.udid])  # stale: not pushed again
        wait_until(lambda: rt.pusher.status()["outbox_pending"] == 0, what="drained")
        time.sleep(1.5)
        assert len(pushes_to(fake_apns, gone.push_token.hex(), since)) == 1
        assert send(base, gone.token_update()).status_code == 200
        rt.pusher.request_push([gone.udid])
        wait_until(
            lambda: len(pushes_to(fake_apns, gone.push_token.hex(), since)) == 2,
            timeout=30,
            what="push after TokenUpdate",
        )


def _redis_server(port: int, directory: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    wait_until(lambda: _pings(client), timeout=10, what=f"redis-server on {port}")
    return process


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


def test_command_enqueued_while_redis_is_down_is_pushed_once_it_is_back(
    rq_settings, make_app, start_worker, pki, fake_apns, tmp_path
):
    port = free_port()
    own_redis = _redis_server(port, tmp_path)
    settings = {**rq_settings, "redis_url": f"redis://127.0.0.1:{port}/0"}
    app = make_app(settings)
    rt = runtime(app)
    device = pki.device()
    token = device.push_token.hex()
    try:
        with serve(app) as base:
            enroll(base, device)
            # What enrollment queued is handed to this Redis, and lost with it (no worker yet).
            wait_until(lambda: rt.pusher.status()["outbox_pending"] == 0, what="handed over")
            own_redis.terminate()
            own_redis.wait(timeout=10)

            command = new_command("ProfileList")
            rt.storage.inner.enqueue(command, [device.udid])  # the database takes it
            started = time.perf_counter()
            assert rt.pusher.request_push([device.udid]) == 1  # stored, not lost
            assert time.perf_counter() - started < 1.0
            wait_until(lambda: rt.jobs.dispatcher.backlog_since is not None, what="deferred")
            assert rt.pusher.status()["outbox_pending"] == 1
            assert command.command_uuid in {q.command_uuid for q in rt.storage.queue(device.udid)}
            # Devices are unaffected while Redis is down.
            assert send(base, device.idle()).status_code == 200
            assert not pushes_to(fake_apns, token)

            own_redis = _redis_server(port, tmp_path)  # Redis is back (empty)
            start_worker(settings)
            fake_apns.wait_for(lambda rs: any(r.token == token for r in rs), timeout=30)
            [record] = pushes_to(fake_apns, token)
            assert record.body == {"mdm": device.push_magic}
            wait_until(lambda: rt.pusher.status()["outbox_pending"] == 0, what="outbox done")
    finally:
        own_redis.terminate()
        own_redis.wait(timeout=10)


def test_worker_delivers_signed_webhooks_and_retries_a_down_receiver(
    rq_settings, make_app, start_worker, pki, webhook_receiver
):
    secret = "rq-webhook-secret"
    settings = {**rq_settings, "webhook_urls": (webhook_receiver.url,), "webhook_secret": secret}
    webhook_receiver.status = 500
    app = make_app(settings)
    start_worker(settings)
    device = pki.device()
    with serve(app) as base:
        started = time.perf_counter()
        enroll(base, device)
        assert time.perf_counter() - started < 2.0
        wait_until(lambda: webhook_receiver.attempts >= 2, timeout=30, what="failed attempts")
        webhook_receiver.status = 200
        webhook_receiver.wait_for(lambda rs: len(rs) >= 2, timeout=30)
    for item in webhook_receiver.received:
        assert verify(secret.encode(), item.headers, item.body)
    # Compliance changes are events too (the worker's upkeep evaluates the new device).
    checkins = [e for e in webhook_receiver.events() if e["type"] == "mdm.checkin"]
    assert sorted(e["message_type"] for e in checkins) == ["Authenticate", "TokenUpdate"]


def test_worker_rolls_out_a_required_app_and_pushes_its_devices(
    rq_settings, make_app, start_worker, pki, fake_apns
):
    """On RQ the assignment only schedules the roll-out; the worker process queues the
    install to every device, marks them pending and pushes them."""
    from tests.api.conftest import Api, make_key

    app = make_app(rq_settings)
    rt = runtime(app)
    worker = start_worker(rq_settings)
    devices = [pki.device(os_version="17.1") for _ in range(3)]
    api = Api(app, make_key(app, "rollout-admin"))
    with serve(app) as base:
        for device in devices:
            enroll(base, device, fake_apns)
        wait_until(lambda: rt.pusher.status()["outbox_pending"] == 0, what="enrollment pushed")
        since = time.time()
        vpn = api.post(
            "/api/v1/apps",
            {"name": "vpn", "kind": "ios_inhouse", "bundle_id": "com.example.vpn",
             "manifest_url": "https://apps.example.com/vpn.plist"},
        ).get_json()["id"]  # fmt: skip
        reply = api.post(f"/api/v1/apps/{vpn}/assignments", {"target": "all"})
        assert reply.status_code == 200, reply.text
        assert reply.get_json()["rollout"] == {"scheduled": True, "backend": "rq"}
        wait_until(
            lambda: (
                {s["status"] for s in rt.apps.store.app_states(vpn)} == {"pending"}
                and len(rt.apps.store.app_states(vpn)) == 3
            ),
            what="the worker's roll-out",
        )
        tokens = {d.push_token.hex() for d in devices}
        fake_apns.wait_for(
            lambda rs: tokens <= {r.token for r in rs if r.received_at > since}, timeout=30
        )
    for device in devices:
        queued = [q.request_type for q in rt.storage.queue(device.udid)]
        assert queued.count("InstallApplication") == 1, queued
    assert '"event":"app_rolled_out"' in worker.output()
