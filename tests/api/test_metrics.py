"""GET /metrics: Prometheus text computed from the database; loopback or a key."""

from __future__ import annotations

import plistlib
import re

import pytest

from mdmserver.metrics.registry import MetricsRegistry
from mdmserver.testing.http import send
from mdmserver.web.runtime import runtime
from tests.api.conftest import make_key


def _value(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{line_start} not in:\n{text}")


def test_counts_from_the_database(app, live_server, pki, api):
    device = pki.device()
    assert send(live_server, device.authenticate()).status_code == 200
    assert send(live_server, device.token_update()).status_code == 200
    body = {"targets": [device.udid], "command": {"RequestType": "ProfileList"}}
    first = api.post("/api/v1/commands", body).get_json()["command_uuid"]
    api.post("/api/v1/commands", body)
    # Answer whatever comes first with Error (ours or another feature's enrollment command).
    offered = plistlib.loads(send(live_server, device.idle()).content)["CommandUUID"]
    send(live_server, device.result("Error", offered))
    assert first

    reply = app.test_client().get("/metrics")  # the test client comes from 127.0.0.1
    assert reply.status_code == 200
    assert reply.content_type.startswith("text/plain; version=0.0.4")
    text = reply.get_data(as_text=True)
    assert "# TYPE mdm_checkins_total counter" in text
    assert _value(text, 'mdm_checkins_total{status="accepted",type="Authenticate"}') == 1
    assert _value(text, 'mdm_checkins_total{status="accepted",type="TokenUpdate"}') == 1
    assert _value(text, 'mdm_command_results_total{status="error"}') == 1
    # Other features may queue commands at enrollment: compare with the queue itself.
    items = runtime(app).storage.queue(device.udid)
    for status in ("queued", "sent", "notnow"):
        expected = sum(1 for i in items if i.status.value == status)
        assert _value(text, f'mdm_command_queue_depth{{status="{status}"}}') == expected
    assert sum(1 for i in items if i.status.value == "sent") == 1
    assert _value(text, 'mdm_devices{enrolled="true"}') == 1


def test_remote_clients_need_a_key(app, api):
    client = app.test_client()
    remote = {"REMOTE_ADDR": "203.0.113.9"}
    refused = client.get("/metrics", environ_base=remote)
    assert refused.status_code == 401 and "key" in refused.get_json()["error"]
    scraper = make_key(app, "prometheus", "metrics")
    trust = make_key(app, "trust-api", "trust")
    auth = {"Authorization": f"Bearer {scraper}"}
    assert client.get("/metrics", environ_base=remote, headers=auth).status_code == 200
    admin = {"Authorization": f"Bearer {api.key}"}
    assert client.get("/metrics", environ_base=remote, headers=admin).status_code == 200
    wrong = {"Authorization": f"Bearer {trust}"}
    assert client.get("/metrics", environ_base=remote, headers=wrong).status_code == 403


def test_allow_list_setting(app_config, tmp_path):
    from dataclasses import replace

    from mdmserver.app import create_app

    app = create_app(replace(app_config, metrics_allow=("203.0.113.0/24",)))
    try:
        client = app.test_client()
        assert (
            client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 200
        )
        assert client.get("/metrics").status_code == 401  # loopback is no longer listed
    finally:
        runtime(app).close()


def test_other_features_register_metrics(app):
    runtime(app).metrics.register(
        "mdm_example_days_left",
        "gauge",
        "An example a feature adds",
        lambda: [({"topic": 'a"b'}, 41.5)],
    )
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'mdm_example_days_left{topic="a\\"b"} 41.5' in text


def test_registry_rules():
    registry = MetricsRegistry()
    registry.register("x_total", "counter", "x", lambda: [({}, 1)])
    with pytest.raises(ValueError):
        registry.register("x_total", "counter", "again", list)
    with pytest.raises(ValueError):
        registry.register("y", "counter", "counters end in _total", list)
    registry.register("broken", "gauge", "raises", lambda: 1 / 0)
    assert re.search(r"^x_total 1$", registry.render(), re.M)
