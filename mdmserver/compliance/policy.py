"""The compliance policy: which rules apply, read from ``<MDM_HOME>/compliance.toml`` (or
``.json``) or set through the API. Unknown keys are refused, so a typo never silently turns a
rule off.

    min_os_version = { iOS = "17.0", macOS = "14.0" }
    passcode_present = true
    passcode_compliant = true
    hardware_encryption = true        # iOS data protection, FileVault on macOS
    sip_enabled = true
    firewall_enabled = true
    supervised = false
    required_profiles = ["com.example.wifi"]
    required_apps = ["com.example.vpn", { bundle_id = "com.example.mail", min_version = "2.1" }]
    forbidden_apps = ["com.example.bad"]   # added to the jailbreak list
    jailbreak_apps = true                  # use the built-in jailbreak-indicator list
    max_checkin_age_hours = 168
    identity_cert_min_days = 7

    [remediation]
    requeue_missing_profiles = true
    refresh_inventory = true
    reinstall_required_apps = true         # a missing required app assigned to the device
    remove_forbidden_apps = true           # a forbidden app this server manages
    device_lock_after_hours = 72           # absent: never lock
    device_lock_message = "This device is out of compliance. Contact IT."
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mdmserver.bounds import POLICY_MAX_DAYS, POLICY_MAX_HOURS
from mdmserver.catalog.schema import PLATFORMS, parse_version
from mdmserver.compliance.jailbreak import JAILBREAK_APPS


class PolicyError(ValueError):
    """The policy cannot be used; the message names the key."""


@dataclass(frozen=True)
class Remediation:
    requeue_missing_profiles: bool = True
    refresh_inventory: bool = True
    reinstall_required_apps: bool = True
    remove_forbidden_apps: bool = True
    device_lock_after_hours: float | None = None
    device_lock_message: str = "This device is out of compliance. Contact your IT department."


@dataclass(frozen=True)
class OSUpdateRule:
    """ "On version >= ``version`` after ``by``": set by ``mdmserver os-update enforce``
    (the DDM enforcement declaration's deadline); only ``platform``'s devices when given."""

    version: str
    by: datetime
    platform: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "by": self.by.isoformat(), "platform": self.platform}


@dataclass(frozen=True)
class RequiredApp:
    """An app that must be installed, at ``min_version`` or later when given (compared as
    dotted numbers, as OS versions are)."""

    bundle_id: str
    min_version: str | None = None

    def to_dict(self) -> dict[str, Any] | str:
        if self.min_version is None:
            return self.bundle_id
        return {"bundle_id": self.bundle_id, "min_version": self.min_version}


@dataclass(frozen=True)
class Policy:
    min_os_version: Mapping[str, str] = field(default_factory=dict)
    passcode_present: bool = True
    passcode_compliant: bool = False
    hardware_encryption: bool = False
    sip_enabled: bool = False
    firewall_enabled: bool = False
    supervised: bool = False
    required_profiles: tuple[str, ...] = ()
    required_apps: tuple[RequiredApp, ...] = ()
    forbidden_apps: tuple[str, ...] = ()
    jailbreak_apps: bool = True
    max_checkin_age_hours: float | None = 168.0
    identity_cert_min_days: float | None = 7.0
    os_updates: tuple[OSUpdateRule, ...] = ()
    remediation: Remediation = field(default_factory=Remediation)

    @property
    def forbidden(self) -> dict[str, str]:
        """Lower-cased bundle id -> label (bundle ids compare case-insensitively)."""
        apps = {k.lower(): v for k, v in JAILBREAK_APPS.items()} if self.jailbreak_apps else {}
        apps.update({bundle.lower(): bundle for bundle in self.forbidden_apps})
        return apps

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["min_os_version"] = dict(self.min_os_version)
        data["required_profiles"] = list(self.required_profiles)
        data["forbidden_apps"] = list(self.forbidden_apps)
        data["required_apps"] = [app.to_dict() for app in self.required_apps]
        data["os_updates"] = [rule.to_dict() for rule in self.os_updates]
        return data


_BOOLS = {
    "passcode_present",
    "passcode_compliant",
    "hardware_encryption",
    "sip_enabled",
    "firewall_enabled",
    "supervised",
    "jailbreak_apps",
}
_HOURS = {"max_checkin_age_hours", "identity_cert_min_days"}
_LISTS = {"required_profiles", "forbidden_apps"}


def policy_from(data: Mapping[str, Any]) -> Policy:
    if not isinstance(data, Mapping):
        raise PolicyError("the policy must be a table (a JSON object)")
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in _BOOLS:
            values[key] = _bool(key, value)
        elif key in _HOURS:
            values[key] = _positive_or_none(key, value)
        elif key in _LISTS:
            values[key] = _strings(key, value)
        elif key == "min_os_version":
            values[key] = _versions(value)
        elif key == "remediation":
            values[key] = _remediation(value)
        elif key == "os_updates":
            values[key] = _os_updates(value)
        elif key == "required_apps":
            values[key] = _required_apps(value)
        else:
            raise PolicyError(f"unknown policy key {key!r}")
    return Policy(**values)


def load_policy(path: Path) -> Policy:
    """The policy in ``path`` (TOML, or JSON by extension); the defaults when it is absent."""
    if not path.is_file():
        return Policy()
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{path}: {exc}") from None
    return policy_from(data)


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(f"{key} must be true or false, got {value!r}")
    return value


def _positive_or_none(key: str, value: Any) -> float | None:
    """A duration in hours or days (by the key's name), positive and at most ten years."""
    if value is None or value is False:
        return None
    high = POLICY_MAX_DAYS if key.endswith("_days") else POLICY_MAX_HOURS
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= high:
        raise PolicyError(
            f"{key} must be a number above 0 and at most {high} (or false to turn it off)"
        )
    return float(value)


def _strings(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f"{key} must be a list of non-empty strings")
    return tuple(value)


def _versions(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise PolicyError("min_os_version must map a platform to a version")
    versions = {}
    for platform, version in value.items():
        if platform not in PLATFORMS:
            raise PolicyError(f"min_os_version: unknown platform {platform!r}")
        try:
            parse_version(str(version))
        except ValueError:
            raise PolicyError(f"min_os_version.{platform}: not a version: {version!r}") from None
        versions[platform] = str(version)
    return versions


def _required_apps(value: Any) -> tuple[RequiredApp, ...]:
    """Bundle ids, or {bundle_id, min_version} tables."""
    if not isinstance(value, list):
        raise PolicyError("required_apps must be a list of bundle ids or {bundle_id, min_version}")
    apps = []
    for i, item in enumerate(value):
        where = f"required_apps[{i}]"
        if isinstance(item, str):
            item = {"bundle_id": item}
        if not isinstance(item, Mapping) or set(item) - {"bundle_id", "min_version"}:
            raise PolicyError(f"{where} must be a bundle id or a table with bundle_id, min_version")
        bundle_id, minimum = item.get("bundle_id"), item.get("min_version")
        if not isinstance(bundle_id, str) or not 0 < len(bundle_id) <= 255:
            raise PolicyError(f"{where}.bundle_id: a bundle id (1 to 255 characters)")
        if minimum is not None:
            try:
                parse_version(str(minimum))
            except ValueError:
                raise PolicyError(f"{where}.min_version: not a version: {minimum!r}") from None
        apps.append(RequiredApp(bundle_id, str(minimum) if minimum is not None else None))
    return tuple(apps)


def _os_updates(value: Any) -> tuple[OSUpdateRule, ...]:
    if not isinstance(value, list):
        raise PolicyError("os_updates must be a list of {version, by, platform}")
    rules = []
    for i, item in enumerate(value):
        where = f"os_updates[{i}]"
        if not isinstance(item, Mapping) or set(item) - {"version", "by", "platform"}:
            raise PolicyError(f"{where} must be a table with version, by and platform")
        version, by, platform = item.get("version"), item.get("by"), item.get("platform")
        try:
            parse_version(str(version))
        except ValueError:
            raise PolicyError(f"{where}.version: not a version: {version!r}") from None
        if platform is not None and platform not in PLATFORMS:
            raise PolicyError(f"{where}.platform: unknown platform {platform!r}")
        rules.append(OSUpdateRule(str(version), parse_deadline(by, f"{where}.by"), platform))
    return tuple(rules)


def parse_deadline(value: Any, where: str = "by") -> datetime:
    """An ISO 8601 date or time; UTC when it names no zone."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise PolicyError(f"{where}: not an ISO 8601 date or time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _remediation(value: Any) -> Remediation:
    if not isinstance(value, Mapping):
        raise PolicyError("remediation must be a table")
    values: dict[str, Any] = {}
    for key, item in value.items():
        if key in (
            "requeue_missing_profiles",
            "refresh_inventory",
            "reinstall_required_apps",
            "remove_forbidden_apps",
        ):
            values[key] = _bool(f"remediation.{key}", item)
        elif key == "device_lock_after_hours":
            values[key] = _positive_or_none(f"remediation.{key}", item)
        elif key == "device_lock_message":
            if not isinstance(item, str):
                raise PolicyError("remediation.device_lock_message must be a string")
            values[key] = item[:200]
        else:
            raise PolicyError(f"unknown remediation key {key!r}")
    return Remediation(**values)
