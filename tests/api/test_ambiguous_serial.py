"""Serials are not identities (issue 12 item 7).

A device reports its own serial number, so an enrolled attacker can claim the victim's. A
lookup by serial that matches several enrolled devices picks none of them: admin routes answer
409 naming the candidates (API and CLI), nothing is queued, and trust by serial answers
``managed: false`` with a reason. Devices are enrolled over real HTTP with signed requests.
"""

from __future__ import annotations

import pytest
import requests
from click.testing import CliRunner

from mdmserver.cli import main
from mdmserver.testing.http import send
from tests.api.conftest import make_key, state

SERIAL = "C02VICTIM001"


def _enroll(live_server, pki, serial: str):
    device = pki.device(serial_number=serial)
    for request in (device.authenticate(), device.token_update()):
        assert send(live_server, request).status_code == 200
    return device


@pytest.fixture
def claimed(live_server, pki):
    """The victim, then an attacker who enrolled claiming the victim's serial number."""
    victim = _enroll(live_server, pki, SERIAL)
    attacker = _enroll(live_server, pki, SERIAL)
    return victim, attacker


@pytest.fixture
def admin_key(app):
    return make_key(app, "admin")


def _api(live_server, method, path, key, **kwargs):
    return requests.request(
        method,
        live_server + path,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
        **kwargs,
    )


def test_admin_routes_answer_409_naming_the_candidates(app, live_server, claimed, admin_key):
    victim, attacker = claimed
    expected = sorted([victim.udid, attacker.udid])
    before = state(app)
    lock = {"command": {"RequestType": "DeviceLock"}, "targets": [SERIAL]}
    for method, path, body in (
        ("GET", f"/api/v1/devices/{SERIAL}", None),
        ("GET", f"/api/v1/devices/{SERIAL}/queue", None),
        ("DELETE", f"/api/v1/devices/{SERIAL}/queue", None),
        ("POST", "/api/v1/commands", lock),
    ):
        reply = _api(live_server, method, path, admin_key, json=body)
        assert reply.status_code == 409, (path, reply.text)
        answer = reply.json()
        assert answer["candidates"] == expected
        assert victim.udid in answer["error"] and attacker.udid in answer["error"]
        assert "UDID" in answer["error"]
    assert state(app) == before  # nothing queued, nothing cleared
    # By UDID each device is still addressable.
    shown = _api(live_server, "GET", f"/api/v1/devices/{victim.udid}", admin_key)
    assert shown.status_code == 200 and shown.json()["id"] == victim.udid


def test_cli_refuses_an_ambiguous_serial_naming_the_candidates(app, app_config, claimed):
    victim, attacker = claimed
    env = {"MDM_HOME": str(app_config.home), "MDM_DATABASE_URL": app_config.database_url}
    before = state(app)
    for args in (
        ["devices", "show", SERIAL],
        ["queue", "show", SERIAL],
        ["lock", SERIAL],
    ):
        result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
        assert result.exit_code != 0, result.output
        assert victim.udid in result.output and attacker.udid in result.output, result.output
    assert state(app) == before


def test_trust_by_an_ambiguous_serial_is_not_managed(app, live_server, claimed):
    victim, _ = claimed
    key = make_key(app, "relying", "trust")
    answer = _api(live_server, "GET", f"/api/v1/trust/devices/{SERIAL}", key)
    assert answer.status_code == 200
    body = answer.json()
    assert body["managed"] is False and body["compliant"] is False
    assert body["reasons"] == ["serial number matches 2 enrolled devices; ask by UDID"]
    assertion = _api(live_server, "GET", f"/api/v1/trust/devices/{SERIAL}/assertion", key)
    assert assertion.status_code == 200 and "assertion" not in assertion.json()
    by_udid = _api(live_server, "GET", f"/api/v1/trust/devices/{victim.udid}", key).json()
    assert by_udid["managed"] is True


def test_a_serial_with_one_enrolled_device_still_names_it(app, live_server, pki, admin_key):
    """A device that checked out leaves its row; the serial then names the enrolled one."""
    old = _enroll(live_server, pki, SERIAL)
    assert send(live_server, old.check_out()).status_code == 200
    current = _enroll(live_server, pki, SERIAL)
    shown = _api(live_server, "GET", f"/api/v1/devices/{SERIAL}", admin_key)
    assert shown.status_code == 200 and shown.json()["id"] == current.udid
    key = make_key(app, "relying", "trust")
    trust = _api(live_server, "GET", f"/api/v1/trust/devices/{SERIAL}", key).json()
    assert trust["managed"] is True
