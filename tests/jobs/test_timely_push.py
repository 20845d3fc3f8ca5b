"""Commands the server queues itself are pushed as promptly as an admin's, under RQ: a real
``mdmserver worker`` process, real Redis, and the APNs stand-in over real TLS.

Before this, they waited for the worker's periodic scan (53-86 s seen); the bound here (5 s) is
far below the scan period, so a push that comes from the scan fails the test.
"""

from __future__ import annotations

import time

from mdmserver.protocol.commands import new_command
from mdmserver.testing.http import send, serve
from mdmserver.web.runtime import runtime
from tests.jobs.conftest import wait_until
from tests.jobs.test_rq_worker import make_app, pushes_to, rq_settings  # noqa: F401

PROMPT = 5.0  # seconds


def test_server_queued_commands_are_pushed_within_seconds(
    rq_settings,  # noqa: F811
    make_app,  # noqa: F811
    start_worker,
    pki,
    fake_apns,
):
    settings = {**rq_settings, "inventory_on_enroll": True}
    app = make_app(settings)
    rt = runtime(app)
    worker = start_worker(settings)
    wait_until(lambda: "worker_start" in worker.output(), timeout=30, what="worker started")
    assert rt.jobs.dispatcher.scan_every is None  # the web process never scans under RQ
    device = pki.device()
    token = device.push_token.hex()
    with serve(app) as base:
        assert send(base, device.authenticate()).status_code == 200
        started = time.monotonic()
        # Enrollment: inventory (and the profile list) are queued by the server itself.
        assert send(base, device.token_update()).status_code == 200
        queued = {q.request_type for q in rt.storage.queue(device.udid)}
        assert {"DeviceInformation", "SecurityInfo", "ProfileList"} <= queued
        fake_apns.wait_for(lambda rs: any(r.token == token for r in rs), timeout=PROMPT)
        first = time.monotonic() - started
        [record] = pushes_to(fake_apns, token)
        assert record.body == {"mdm": device.push_magic}

        # A feature queueing outside any device request (a renewal, a remediation): the same.
        started = time.monotonic()
        rt.storage.enqueue(new_command("CertificateList"), [device.udid], created_by="test")
        fake_apns.wait_for(lambda rs: len(pushes_to(fake_apns, token)) == 2, timeout=PROMPT)
        second = time.monotonic() - started
    print(
        f"server-queued push after enrollment: {first:.2f} s, after a feature's enqueue:"
        f" {second:.2f} s"
    )
    assert rt.pusher.status()["outbox_pending"] == 0
