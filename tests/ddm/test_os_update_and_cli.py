"""OS-update enforcement end to end (declaration, sync, progress from the status channel,
the compliance rule), and the declarations CLI."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from mdmserver.cli import main
from mdmserver.web.runtime import runtime
from tests.api.conftest import last_audit
from tests.ddm.conftest import PASSCODE, ddm, sync_commands
from tests.trust.conftest import CLEAN, enroll

ENFORCEMENT = "com.apple.configuration.softwareupdate.enforcement.specific"


@pytest.fixture
def cli(app, app_config):
    env = {"MDM_HOME": str(app_config.home), "MDM_DATABASE_URL": app_config.database_url}

    def run(*args: str) -> Any:
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return run


def _compliant(app: Any, base: str, udid: str) -> tuple[bool, list[str]]:
    key = runtime(app).admin.api_keys.create(f"t-{uuid.uuid4()}", "trust", actor="t").key
    answer = requests.get(
        f"{base}/api/v1/trust/devices/{udid}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    ).json()
    return answer["compliant"], answer.get("reasons", [])


def _status(install: str, version: str, pending: bool = True) -> dict[str, Any]:
    update: dict[str, Any] = {"install-state": install}
    if pending:
        update["pending-version"] = {"os-version": "17.5", "build-version": "21F79"}
    return {
        "StatusItems": {
            "softwareupdate": update,
            "device": {"operating-system": {"version": version}},
        }
    }


def test_os_update_enforced_end_to_end(app, live_server, pki, admin):
    policy = {"passcode_present": True, "jailbreak_apps": False}
    assert admin.call("PUT", "/compliance/policy", policy).status_code == 200
    device = pki.device(os_version="17.4")
    enroll(live_server, device, CLEAN)
    sync_commands(live_server, device)
    assert _compliant(app, live_server, device.udid)[0] is True

    reply = admin.call("POST", "/os-updates", {"version": "17.5", "by": "2026-01-15T18:00"})
    assert reply.status_code == 201, reply.text
    assert reply.json()["synced"] == 1
    assert len(sync_commands(live_server, device)) == 1
    items = ddm(live_server, device, "declaration-items").json()["Declarations"]
    assert reply.json()["identifier"] in {i["Identifier"] for i in items["Configurations"]}
    declaration = ddm(
        live_server, device, f"declaration/configuration/{reply.json()['identifier']}"
    ).json()
    assert declaration["Type"] == ENFORCEMENT
    assert declaration["Payload"] == {
        "TargetOSVersion": "17.5",
        "TargetLocalDateTime": "2026-01-15T18:00:00",
    }

    assert ddm(live_server, device, "status", _status("downloading", "17.4")).status_code == 200
    compliant, reasons = _compliant(app, live_server, device.udid)
    assert compliant is False and any("older than 17.5" in r for r in reasons)
    progress = admin.call("GET", "/os-updates").json()
    (mine,) = progress["devices"]
    assert mine["state"] == "downloading"
    assert mine["pending_version"] == {"os-version": "17.5", "build-version": "21F79"}

    assert ddm(live_server, device, "status", _status("none", "17.5", False)).status_code == 200
    assert _compliant(app, live_server, device.udid)[0] is True
    (mine,) = admin.call("GET", "/os-updates").json()["devices"]
    assert (mine["state"], mine["os_version"]) == ("updated", "17.5")


def test_bad_os_update_requests_are_refused(admin):
    for body in (
        {"version": "17.5"},
        {"version": "x", "by": "2026-01-01"},
        {"version": "17.5", "by": "soon"},
        {"version": "17.5", "by": "2026-01-01", "colour": "red"},
        {"version": 17, "by": "2026-01-01"},
    ):
        assert admin.call("POST", "/os-updates", body).status_code == 400, body
    assert admin.call("GET", "/declarations").json()["declarations"] != []  # built-ins only
    assert admin.call("GET", "/os-updates").status_code == 404


def test_declarations_cli(app, cli, tmp_path):
    saved = cli("declarations", "put", "pc", "--type", PASSCODE, "--set", "MinimumLength=6")
    assert saved.exit_code == 0 and "saved" in saved.output
    again = cli("declarations", "put", "pc", "--type", PASSCODE, "--set", "MinimumLength=6")
    assert "unchanged" in again.output
    shown = json.loads(cli("declarations", "show", "pc").output)
    assert shown["Payload"] == {"MinimumLength": 6} and shown["class"] == "configuration"
    refused = cli("declarations", "put", "bad", "--type", PASSCODE, "--set", 'MinimumLength="x"')
    assert refused.exit_code != 0 and "Payload.MinimumLength" in refused.output
    body = tmp_path / "act.json"
    activation = {
        "Type": "com.apple.activation.simple",
        "Payload": {"StandardConfigurations": ["pc"]},
    }
    body.write_text(json.dumps(activation))
    assert cli("declarations", "put", "act", "--payload", str(body)).exit_code == 0
    assert cli("declarations", "assign", "act", "tag:lab").exit_code == 0
    listed = json.loads(cli("declarations", "list", "--json").output)
    assert {d["Identifier"]: d["assignments"] for d in listed}["act"] == ["tag:lab"]
    assert last_audit(app).action == "declarations.assign"
    assert last_audit(app).actor.startswith("cli:")
    assert cli("declarations", "unassign", "act", "tag:lab").exit_code == 0
    assert cli("declarations", "delete", "pc").exit_code != 0  # the activation needs it
    assert cli("declarations", "delete", "act").exit_code == 0
    assert cli("declarations", "delete", "pc").exit_code == 0
    enforced = cli(
        "os-update", "enforce", "--version", "17.5", "--by", "2030-01-01", "--tag", "lab"
    )
    assert enforced.exit_code == 0, enforced.output
    assert "com.mdmserver.os-update.tag-lab" in enforced.output
    status = json.loads(cli("os-update", "status", "--tag", "lab", "--json").output)
    assert status["version"] == "17.5" and status["devices"] == []


def test_the_os_update_rule_holds_from_its_deadline_on():
    from datetime import UTC, datetime

    from mdmserver.compliance.policy import PolicyError, policy_from
    from mdmserver.compliance.rules import DeviceState, Outcome, os_update_deadline

    policy = policy_from(
        {"os_updates": [{"version": "17.5", "by": "2026-06-01", "platform": "iOS"}]}
    )

    def judge(platform: str, version: str, day: int) -> Any:
        now = datetime(2026, 6, day, tzinfo=UTC)
        state = DeviceState(platform, {"os_version": version}, now, None, now)
        return os_update_deadline(policy, state)

    after = judge("iOS", "17.4", 2)
    assert after.outcome is Outcome.FAIL and "required since 2026-06-01" in after.reason
    assert judge("iOS", "17.5", 2).outcome is Outcome.PASS
    assert judge("macOS", "14.0", 2) is None  # another platform's rule
    early = DeviceState("iOS", {"os_version": "17.4"}, None, None, datetime(2026, 5, 1, tzinfo=UTC))
    assert os_update_deadline(policy, early).outcome is Outcome.PASS
    assert "due by" in os_update_deadline(policy, early).reason
    with pytest.raises(PolicyError, match="os_updates"):
        policy_from({"os_updates": [{"version": "x", "by": "2026-01-01"}]})
    assert policy_from(policy.to_dict()) == policy  # round trip, as the API stores it
