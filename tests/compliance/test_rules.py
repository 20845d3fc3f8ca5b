"""Each rule's pass / fail / unknown with a reason, and the policy file's validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mdmserver.compliance.evaluate import State, evaluate
from mdmserver.compliance.policy import Policy, PolicyError, load_policy, policy_from
from mdmserver.compliance.rules import DeviceState, Outcome

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def device(platform: str | None = "iOS", **facts: Any) -> DeviceState:
    facts.setdefault("installed_apps", [])  # the default policy checks for jailbreak apps
    return DeviceState(
        platform=platform,
        facts=facts,
        last_seen_at=facts.pop("last_seen_at", NOW),
        cert_not_after=facts.pop("cert_not_after", NOW + timedelta(days=300)),
        now=NOW,
    )


def outcome(policy: Policy, state: DeviceState, rule: str) -> tuple[Outcome, str]:
    result = next(r for r in evaluate(policy, state).results if r.rule == rule)
    return result.outcome, result.reason


def test_min_os_version_per_platform():
    policy = policy_from({"min_os_version": {"iOS": "17.2", "macOS": "14"}})
    assert outcome(policy, device(os_version="17.4"), "min_os_version")[0] is Outcome.PASS
    failed = outcome(policy, device(os_version="16.7.8"), "min_os_version")
    assert failed == (Outcome.FAIL, "iOS 16.7.8 is older than the minimum 17.2")
    assert outcome(policy, device("macOS", os_version="14.0"), "min_os_version")[0] is Outcome.PASS
    assert outcome(policy, device(), "min_os_version")[0] is Outcome.UNKNOWN
    assert outcome(policy, device("tvOS", os_version="1"), "min_os_version")[0] is Outcome.PASS


def test_passcode_and_encryption_rules():
    policy = policy_from(
        {"passcode_present": True, "passcode_compliant": True, "hardware_encryption": True}
    )
    ok = device(passcode_present=True, passcode_compliant=True, data_protection=True)
    assert evaluate(policy, ok).state is State.COMPLIANT
    bad = evaluate(policy, device(passcode_present=False, passcode_compliant=True))
    assert bad.state is State.NONCOMPLIANT and "no passcode is set" in bad.reasons
    unknown = evaluate(policy, device())
    assert unknown.state is State.UNKNOWN and not unknown.compliant
    mac = evaluate(policy, device("macOS", filevault=False))
    assert mac.failed("hardware_encryption") and "FileVault is off" in mac.reasons
    assert outcome(policy, device("macOS"), "passcode_present")[1] == "not applicable on macOS"


def test_mac_rules_and_supervision():
    policy = policy_from({"sip_enabled": True, "firewall_enabled": True, "supervised": True})
    mac = evaluate(policy, device("macOS", sip=False, firewall=True, supervised=True))
    assert mac.failed("sip_enabled") and not mac.failed("firewall_enabled")
    ios = evaluate(policy, device(supervised=False))
    assert ios.failed("supervised") and not ios.failed("sip_enabled")


def test_profiles_and_forbidden_apps():
    policy = policy_from({"required_profiles": ["a.b"], "forbidden_apps": ["com.evil"]})
    result = evaluate(policy, device(profiles=[{"identifier": "x"}], installed_apps=[]))
    assert result.failed("required_profiles")
    jailbroken = evaluate(
        policy,
        device(profiles=[{"identifier": "a.b"}], installed_apps=[{"id": "COM.SAURIK.CYDIA"}]),
    )
    assert jailbroken.failed("forbidden_apps")
    assert any("Cydia" in reason for reason in jailbroken.reasons)
    custom = evaluate(
        policy, device(profiles=[{"identifier": "a.b"}], installed_apps=[{"id": "com.evil"}])
    )
    assert custom.failed("forbidden_apps")
    off = policy_from({"jailbreak_apps": False})
    assert not evaluate(off, device(installed_apps=[{"id": "com.saurik.Cydia"}])).failed(
        "forbidden_apps"
    )


def test_checkin_age_and_identity_certificate():
    policy = policy_from(
        {"max_checkin_age_hours": 24, "identity_cert_min_days": 7, "passcode_present": False}
    )
    silent = evaluate(policy, device(last_seen_at=NOW - timedelta(hours=30)))
    assert silent.failed("max_checkin_age") and "30 h ago" in silent.reasons[0]
    expiring = evaluate(policy, device(cert_not_after=NOW + timedelta(days=2)))
    assert expiring.failed("identity_certificate")
    assert "expires in 2.0 days" in expiring.reasons[-1]
    never = evaluate(policy, device(last_seen_at=None, cert_not_after=None))
    assert never.state is State.UNKNOWN


@pytest.mark.parametrize(
    "data, message",
    [
        ({"passcode": True}, "unknown policy key 'passcode'"),
        ({"passcode_present": "yes"}, "passcode_present must be true or false"),
        ({"min_os_version": {"Android": "1"}}, "unknown platform 'Android'"),
        ({"min_os_version": {"iOS": "x"}}, "not a version"),
        ({"required_profiles": "a"}, "must be a list"),
        ({"max_checkin_age_hours": -1}, "max_checkin_age_hours must be a number above 0"),
        ({"max_checkin_age_hours": 1e12}, "at most 87840"),
        ({"identity_cert_min_days": 1e6}, "identity_cert_min_days .* at most 3660"),
        ({"remediation": {"device_lock_after_hours": 1e12}}, "device_lock_after_hours"),
        ({"remediation": {"lock": 1}}, "unknown remediation key 'lock'"),
    ],
)
def test_bad_policies_are_refused_with_the_key(data, message):
    with pytest.raises(PolicyError, match=message):
        policy_from(data)


def test_policy_file_toml_and_json(tmp_path):
    assert load_policy(tmp_path / "absent.toml") == Policy()
    toml = tmp_path / "compliance.toml"
    toml.write_text(
        'min_os_version = { iOS = "17.0" }\nmax_checkin_age_hours = false\n'
        "[remediation]\ndevice_lock_after_hours = 72\n"
    )
    policy = load_policy(toml)
    assert policy.min_os_version == {"iOS": "17.0"}
    assert policy.max_checkin_age_hours is None
    assert policy.remediation.device_lock_after_hours == 72
    as_json = tmp_path / "compliance.json"
    as_json.write_text('{"supervised": true}')
    assert load_policy(as_json).supervised is True
    assert policy_from(policy.to_dict()) == policy  # the API round-trips what GET shows


def test_required_apps_on_every_app_list():
    """Installed, managed and DDM lists all count; a removal one list reports wins over an
    older listing; a minimum version needs a version."""
    policy = policy_from({"required_apps": ["com.a", {"bundle_id": "com.b", "min_version": "2.1"}]})
    assert outcome(policy, device(installed_apps=None), "required_apps")[0] is Outcome.UNKNOWN
    listed = device(installed_apps=[{"id": "com.a"}, {"id": "COM.B", "version": "2.10"}])
    assert outcome(policy, listed, "required_apps") == (
        Outcome.PASS,
        "all required apps installed",
    )
    removed = device(
        installed_apps=[{"id": "com.a"}, {"id": "com.b", "version": "3"}],
        managed_apps=[{"id": "com.a", "status": "ManagedButUninstalled"}],
    )
    assert outcome(policy, removed, "required_apps") == (
        Outcome.FAIL,
        "required app com.a is not installed",
    )
    by_ddm = device(
        installed_apps=None,
        managed_apps=[{"id": "com.a", "status": "Managed"}],
        ddm_apps=[{"id": "com.b", "state": "managed", "version": "2.0"}],
    )
    assert outcome(policy, by_ddm, "required_apps") == (
        Outcome.FAIL,
        "required app com.b 2.0 is older than 2.1",
    )
    # DDM's list alone names only declared apps: it cannot say one is missing.
    ddm_only = device(installed_apps=None, ddm_apps=[])
    assert outcome(policy, ddm_only, "required_apps")[0] is Outcome.UNKNOWN
    assert outcome(policy, ddm_only, "forbidden_apps")[0] is Outcome.UNKNOWN
    no_version = device(managed_apps=[{"id": "com.a", "status": "Managed"},
                                      {"id": "com.b", "status": "Managed"}])  # fmt: skip
    assert outcome(policy, no_version, "required_apps")[0] is Outcome.UNKNOWN


def test_forbidden_apps_say_whether_mdm_can_remove_them():
    policy = policy_from({"forbidden_apps": ["com.evil", "com.bad"], "jailbreak_apps": False})
    state = device(
        installed_apps=[{"id": "com.evil"}, {"id": "com.bad"}],
        managed_apps=[{"id": "com.bad", "status": "Managed"}],
    )
    result = next(r for r in evaluate(policy, state).results if r.rule == "forbidden_apps")
    assert result.outcome is Outcome.FAIL
    assert result.reason == (
        "forbidden apps installed: com.bad [managed: MDM can remove it], "
        "com.evil [not managed: MDM cannot remove it, the user must]"
    )
    assert (result.items, result.removable) == (("com.bad", "com.evil"), ("com.bad",))
    gone = device(installed_apps=[], managed_apps=[{"id": "com.bad", "status": "Queued"}])
    assert outcome(policy, gone, "forbidden_apps")[0] is Outcome.PASS
