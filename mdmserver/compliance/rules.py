"""One function per rule: each says pass, fail or unknown, with a reason a person can act on.

"unknown" means the device has not told us yet (or told us something unreadable). A rule that
does not apply to the platform passes and says so, so reasons stay honest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from mdmserver.catalog.schema import parse_version
from mdmserver.compliance.apps import app_sightings
from mdmserver.compliance.jailbreak import JAILBREAK_APPS
from mdmserver.compliance.policy import Policy


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule: str
    outcome: Outcome
    reason: str
    items: tuple[str, ...] = ()  # what failed: missing profile identifiers, forbidden bundle ids
    removable: tuple[str, ...] = ()  # of the forbidden apps, those MDM manages (can remove)

    def to_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "outcome": self.outcome.value, "reason": self.reason}


@dataclass(frozen=True)
class DeviceState:
    """What rules judge: inventory facts (a missing key is unknown) and protocol facts."""

    platform: str | None
    facts: Mapping[str, Any]
    last_seen_at: datetime | None
    cert_not_after: datetime | None
    now: datetime


Rule = Callable[[Policy, DeviceState], RuleResult | None]  # None: the rule is off


def _ok(rule: str, reason: str) -> RuleResult:
    return RuleResult(rule, Outcome.PASS, reason)


def _fail(rule: str, reason: str) -> RuleResult:
    return RuleResult(rule, Outcome.FAIL, reason)


def _unknown(rule: str, reason: str) -> RuleResult:
    return RuleResult(rule, Outcome.UNKNOWN, reason)


def min_os_version(policy: Policy, device: DeviceState) -> RuleResult | None:
    name = "min_os_version"
    if not policy.min_os_version:
        return None
    if device.platform is None:
        return _unknown(name, "platform not known yet")
    minimum = policy.min_os_version.get(device.platform)
    if minimum is None:
        return _ok(name, f"no minimum set for {device.platform}")
    running = device.facts.get("os_version")
    try:
        ok = parse_version(str(running)) >= parse_version(minimum)
    except ValueError:
        return _unknown(name, "OS version not reported yet")
    if ok:
        return _ok(name, f"{device.platform} {running} meets minimum {minimum}")
    return _fail(name, f"{device.platform} {running} is older than the minimum {minimum}")


def _boolean_rule(
    name: str, enabled: str, fact: str, good: str, bad: str, platforms: frozenset[str]
) -> Rule:
    def rule(policy: Policy, device: DeviceState) -> RuleResult | None:
        if not getattr(policy, enabled):
            return None
        if device.platform is not None and device.platform not in platforms:
            return _ok(name, f"not applicable on {device.platform}")
        value = device.facts.get(fact)
        if value is None:
            return _unknown(name, f"{good}: not reported yet")
        return _ok(name, good) if value else _fail(name, bad)

    return rule


_MOBILE = frozenset({"iOS", "tvOS", "visionOS", "watchOS"})
_MAC = frozenset({"macOS"})

passcode_present = _boolean_rule(
    "passcode_present", "passcode_present", "passcode_present",
    "passcode set", "no passcode is set", _MOBILE,
)  # fmt: skip
passcode_compliant = _boolean_rule(
    "passcode_compliant", "passcode_compliant", "passcode_compliant",
    "passcode meets the passcode policy", "passcode does not meet the passcode policy", _MOBILE,
)  # fmt: skip
sip_enabled = _boolean_rule(
    "sip_enabled", "sip_enabled", "sip",
    "System Integrity Protection on", "System Integrity Protection is off", _MAC,
)  # fmt: skip
firewall_enabled = _boolean_rule(
    "firewall_enabled", "firewall_enabled", "firewall",
    "firewall on", "the firewall is off", _MAC,
)  # fmt: skip
supervised = _boolean_rule(
    "supervised", "supervised", "supervised",
    "device supervised", "the device is not supervised", _MOBILE | _MAC,
)  # fmt: skip


def os_update_deadline(policy: Policy, device: DeviceState) -> RuleResult | None:
    """On version >= V after the deadline of each OS update enforced (mdmserver os-update)."""
    name = "os_update"
    rules = [r for r in policy.os_updates if r.platform in (None, device.platform)]
    if not rules:
        return None
    running = device.facts.get("os_version")
    try:
        current = parse_version(str(running))
    except ValueError:
        return _unknown(name, "OS version not reported yet")
    for rule in sorted(rules, key=lambda r: r.by):
        if current >= parse_version(rule.version) or device.now < rule.by:
            continue
        since = f"{rule.by:%Y-%m-%d %H:%M} UTC"
        return _fail(name, f"OS {running} is older than {rule.version}, required since {since}")
    due = [r for r in rules if current < parse_version(r.version)]
    if due:
        first = min(due, key=lambda r: r.by)
        return _ok(name, f"update to {first.version} due by {first.by:%Y-%m-%d %H:%M} UTC")
    return _ok(name, f"OS {running} meets every enforced update")


def hardware_encryption(policy: Policy, device: DeviceState) -> RuleResult | None:
    name = "hardware_encryption"
    if not policy.hardware_encryption:
        return None
    if device.platform == "macOS" or (device.platform is None and "filevault" in device.facts):
        value, good, bad = device.facts.get("filevault"), "FileVault on", "FileVault is off"
    else:
        value = device.facts.get("data_protection")
        good, bad = "data protection on", "data protection is off (no passcode or no encryption)"
    if value is None:
        return _unknown(name, f"{good}: not reported yet")
    return _ok(name, good) if value else _fail(name, bad)


def required_profiles(policy: Policy, device: DeviceState) -> RuleResult | None:
    name = "required_profiles"
    if not policy.required_profiles:
        return None
    profiles = device.facts.get("profiles")
    if profiles is None:
        return _unknown(name, "profile list not reported yet")
    installed = {p.get("identifier") for p in profiles if isinstance(p, Mapping)}
    missing = [p for p in policy.required_profiles if p not in installed]
    if missing:
        reason = "required profiles missing: " + ", ".join(missing)
        return RuleResult(name, Outcome.FAIL, reason, tuple(missing))
    return _ok(name, "all required profiles installed")


def required_apps(policy: Policy, device: DeviceState) -> RuleResult | None:
    """Each required app installed (at its minimum version when the policy names one), as the
    device's app lists and DDM status say; ``items``: the bundle ids missing or too old."""
    name = "required_apps"
    if not policy.required_apps:
        return None
    seen = app_sightings(device.facts)
    if seen is None:
        return _unknown(name, "app lists not reported yet")
    problems: list[str] = []
    failing: list[str] = []
    unknown: list[str] = []
    # DDM's list names only the apps declarations manage: alone it cannot say one is missing.
    listed = any(device.facts.get(k) is not None for k in ("installed_apps", "managed_apps"))
    for wanted in policy.required_apps:
        found = seen.get(wanted.bundle_id.lower())
        if found is None or not found.present:
            if not listed and found is None:
                unknown.append(f"required app {wanted.bundle_id}: app lists not reported yet")
                continue
            problems.append(f"required app {wanted.bundle_id} is not installed")
            failing.append(wanted.bundle_id)
            continue
        if wanted.min_version is None:
            continue
        if found.version is None:
            unknown.append(f"required app {wanted.bundle_id}: version not reported yet")
            continue
        try:
            too_old = parse_version(found.version) < parse_version(wanted.min_version)
        except ValueError:
            unknown.append(f"required app {wanted.bundle_id}: unreadable version {found.version!r}")
            continue
        if too_old:
            problems.append(
                f"required app {wanted.bundle_id} {found.version} is older than "
                f"{wanted.min_version}"
            )
            failing.append(wanted.bundle_id)
    if problems:
        return RuleResult(name, Outcome.FAIL, "; ".join(problems + unknown), tuple(failing))
    if unknown:
        return _unknown(name, "; ".join(unknown))
    return _ok(name, "all required apps installed")


def forbidden_apps(policy: Policy, device: DeviceState) -> RuleResult | None:
    """No forbidden app (the policy's and, unless turned off, the jailbreak indicators) on
    the device, by any of its app lists. The reason says which can be removed: MDM removes
    only apps it manages; an app the user installed must be removed by the user."""
    name = "forbidden_apps"
    forbidden = policy.forbidden
    if not forbidden:
        return None
    seen = app_sightings(device.facts)
    if seen is None or device.facts.get("installed_apps") is None:
        # Only the InstalledApplicationList names apps the user installed.
        return _unknown(name, "installed applications not reported yet")
    found = sorted(
        (app for key, app in seen.items() if key in forbidden and app.present),
        key=lambda app: app.bundle_id,
    )
    if found:
        labels = []
        for app in found:
            label = forbidden[app.bundle_id.lower()]
            text = label if label == app.bundle_id else f"{label} ({app.bundle_id})"
            if app.managed:
                text += " [managed: MDM can remove it]"
            else:
                text += " [not managed: MDM cannot remove it, the user must]"
            labels.append(text)
        jailbreak = any(a.bundle_id.lower() in _JAILBREAK for a in found)
        kind = (
            "forbidden apps installed (jailbreak indicator)"
            if jailbreak
            else ("forbidden apps installed")
        )
        reason = f"{kind}: " + ", ".join(labels)
        return RuleResult(
            name,
            Outcome.FAIL,
            reason,
            tuple(a.bundle_id for a in found),
            tuple(a.bundle_id for a in found if a.managed),
        )
    return _ok(name, "no forbidden apps installed")


_JAILBREAK = frozenset(k.lower() for k in JAILBREAK_APPS)


def checkin_age(policy: Policy, device: DeviceState) -> RuleResult | None:
    name = "max_checkin_age"
    if policy.max_checkin_age_hours is None:
        return None
    if device.last_seen_at is None:
        return _unknown(name, "device has not checked in yet")
    limit = timedelta(hours=policy.max_checkin_age_hours)
    silent = device.now - device.last_seen_at
    if silent > limit:
        hours = silent.total_seconds() / 3600
        return _fail(
            name, f"last check-in {hours:.0f} h ago (limit {policy.max_checkin_age_hours:g} h)"
        )
    return _ok(name, "checked in recently")


def identity_certificate(policy: Policy, device: DeviceState) -> RuleResult | None:
    name = "identity_certificate"
    if policy.identity_cert_min_days is None:
        return None
    if device.cert_not_after is None:
        return _unknown(name, "no identity certificate bound yet")
    left = device.cert_not_after - device.now
    if left < timedelta(days=policy.identity_cert_min_days):
        days = max(left.total_seconds() / 86400, 0)
        return _fail(name, f"identity certificate expires in {days:.1f} days")
    return _ok(name, "identity certificate valid")


RULES: tuple[Rule, ...] = (
    min_os_version,
    os_update_deadline,
    passcode_present,
    passcode_compliant,
    hardware_encryption,
    sip_enabled,
    firewall_enabled,
    supervised,
    required_profiles,
    required_apps,
    forbidden_apps,
    checkin_age,
    identity_certificate,
)
