"""Profile changes on a server without a profile signer (``mdmserver init`` not run yet).

An assignment is the administrator's decision and is kept; what cannot be done without the
signer is sending signed profiles to devices, so that is deferred, with a warning in the answer
(and in the log) instead of a 500 after the assignment was already stored. Once the signer
exists, a retry (or the devices' next ProfileList report, or the next change) delivers.
"""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner

from mdmserver.cli.profiles import profiles
from mdmserver.profiles.signing import SIGNING_CERT
from mdmserver.web.runtime import runtime
from tests.api.conftest import Api, last_audit, make_key
from tests.profiles.conftest import write_signer

API = "/api/v1/profiles"
PROFILE_COMMANDS = {"InstallProfile", "RemoveProfile"}


def _profile_commands(app: Any, udid: str) -> list[str]:
    return [
        q.request_type
        for q in runtime(app).storage.queue(udid)
        if q.request_type in PROFILE_COMMANDS
    ]


def _api(app: Any) -> Api:
    return Api(app, make_key(app, "test-admin"))


def test_assigning_without_a_signer_keeps_the_assignment_and_defers_delivery(app):
    api = _api(app)
    udid = api.enroll()
    created = api.post(API, {"name": "r", "template": "restrictions"})
    assert created.status_code == 201, created.get_json()

    reply = api.post(f"{API}/r/assignments", {"target": "all"})
    assert reply.status_code == 201, reply.get_data(as_text=True)
    body = reply.get_json()
    assert body["assigned"] is True
    [warning] = body["warnings"]
    assert SIGNING_CERT in warning["message"] and "1 device" in warning["message"]
    assert api.get(f"{API}/r").get_json()["assignments"] == ["all"]
    assert _profile_commands(app, udid) == []  # nothing half-sent
    assert api.get(f"{API}/r/status").get_json()["status"] == []
    entry = last_audit(app)
    assert (entry.action, entry.outcome) == ("profiles.assign", "ok")


def test_a_change_warns_only_when_devices_were_left_out(app):
    """Retry and replace would send r: they warn. Unassigning and deleting send nothing
    signed (r never reached the device): no warning, no error."""
    api = _api(app)
    api.enroll()
    assert api.post(API, {"name": "r", "template": "restrictions"}).status_code == 201
    assert api.post(f"{API}/r/assignments", {"target": "all"}).status_code == 201
    variables = {"allow_camera": False}  # new content: devices that should have r are synced
    replace = {"name": "r", "template": "restrictions", "replace": True, "variables": variables}
    calls = [
        ("POST", f"{API}/r/retry", None, 200, True),
        ("POST", API, replace, 201, True),
        ("DELETE", f"{API}/r/assignments/all", None, 200, False),
        ("DELETE", f"{API}/r", None, 200, False),
    ]
    for method, url, body, status, warned in calls:
        reply = api.client.open(url, method=method, headers=api.headers(), json=body)
        assert reply.status_code == status, (url, reply.get_data(as_text=True))
        messages = [w["message"] for w in reply.get_json()["warnings"]]
        assert any(SIGNING_CERT in m for m in messages) == warned, (url, messages)


def test_a_retry_after_init_delivers_what_was_deferred(app, app_config, pki):
    api = _api(app)
    udid = api.enroll()
    assert api.post(API, {"name": "r", "template": "restrictions"}).status_code == 201
    assert api.post(f"{API}/r/assignments", {"target": "all"}).status_code == 201
    assert _profile_commands(app, udid) == []

    write_signer(app_config.home, pki)
    reply = api.post(f"{API}/r/retry")
    assert reply.status_code == 200
    assert reply.get_json() == {"retried": 0, "warnings": []}
    assert _profile_commands(app, udid) == ["InstallProfile"]


def test_a_device_sync_without_a_signer_queues_nothing_rather_than_half(app):
    """One device's plan removes a profile and installs another: without the signer, the
    removal is not sent alone (the device would be left between two states); nothing is."""
    api = _api(app)
    udid = api.enroll()
    profiles = runtime(app).profiles
    old = profiles.admin.from_template("restrictions", "old", {}).profile
    new = profiles.admin.from_template("passcode", "new", {"min_length": 8}).profile
    profiles.store.record_profile_list(udid, {old.identifier: old.payload_uuid})
    profiles.store.assign(new.id, "all")  # in the store only: the sync is what is tested

    outcome = profiles.service.reconcile(udid)
    assert outcome.deferred is not None and SIGNING_CERT in outcome.deferred
    assert not outcome.plan
    assert _profile_commands(app, udid) == []
    assert profiles.store.states(udid)[old.identifier].installed_uuid == old.payload_uuid


def test_the_cli_assigns_and_warns_on_stderr(app, app_config):
    api = _api(app)
    udid = api.enroll()
    runtime(app).profiles.admin.from_template("restrictions", "r", {})
    env = {"MDM_HOME": str(app_config.home), "MDM_DATABASE_URL": app_config.database_url}
    done = CliRunner().invoke(profiles, ["assign", "r", "all"], env=env)
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "assigned"
    assert "warning: devices: profiles not sent to 1 device(s)" in done.stderr
    assert _profile_commands(app, udid) == []
