"""What an assignment's install command carries besides the app: its management flags and its
managed app configuration, checked against Apple's schema.

``ManagementFlags`` values come from the rangelist in Apple's schema for the command the app
kind is installed with (InstallApplication: 1 remove the app with the MDM profile, 4 prevent
backup of the app's data, 5 both; InstallEnterpriseApplication: 1); ``0`` means "no flags":
the key is left out and the app stays when MDM goes. The schema also says where each key
exists: per platform, from which OS version, and whether User Enrollment forbids it (macOS
takes ManagementFlags only from 11.0 and never with User Enrollment), so :func:`device_keys`
drops what the device would refuse and says so.

A configuration is a dictionary a device stores as the app's managed configuration: it must
survive a property list round trip (string keys, no null, integers within 64 bits) and stay
small (:data:`MAX_CONFIGURATION_BYTES`).
"""

from __future__ import annotations

import hashlib
import json
import plistlib
from collections.abc import Mapping
from typing import Any, cast

from mdmserver.catalog.schema import Platform, command_spec, supports

NO_FLAGS = 0
MAX_CONFIGURATION_BYTES = 64 * 1024  # as a binary property list
MAX_CONFIGURATION_DEPTH = 16
_INT64 = (-(2**63), 2**64 - 1)


class OptionError(ValueError):
    """A flag or configuration refused; the message names the field."""


def install_request_type(kind: str) -> str:
    return "InstallEnterpriseApplication" if kind == "macos_pkg" else "InstallApplication"


def allowed_flags(kind: str) -> tuple[int, ...]:
    """0 and the ManagementFlags rangelist of the command that installs ``kind``."""
    spec = command_spec(install_request_type(kind))
    key = spec.key("ManagementFlags") if spec is not None else None
    enum = key.enum if key is not None and key.enum else (1,)
    return (NO_FLAGS, *sorted(int(v) for v in enum))


def check_flags(kind: str, value: Any) -> int | None:
    if value is None:
        return None
    allowed = allowed_flags(kind)
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        command = install_request_type(kind)
        raise OptionError(
            f"management_flags: one of {', '.join(map(str, allowed))} for {command} "
            "(0: none, the app stays when MDM is removed; 1: removed with MDM; 4: no backup of "
            "its data; 5: both), from Apple's schema"
        )
    return value


def check_configuration(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise OptionError("configuration: a JSON object (the app's managed configuration)")
    _check_plist_value(value, "configuration", 0)
    size = len(plistlib.dumps(value, fmt=plistlib.FMT_BINARY))
    if size > MAX_CONFIGURATION_BYTES:
        raise OptionError(
            f"configuration: {size} bytes as a property list; at most {MAX_CONFIGURATION_BYTES}"
        )
    return value


def _check_plist_value(value: Any, path: str, depth: int) -> None:
    if depth > MAX_CONFIGURATION_DEPTH:
        raise OptionError(f"{path}: nested deeper than {MAX_CONFIGURATION_DEPTH} levels")
    if value is None:
        raise OptionError(f"{path}: null has no property list form; leave the key out")
    if isinstance(value, bool | str | float):
        return
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise OptionError(f"{path}: integer out of the property list range (64 bits)")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise OptionError(f"{path}: keys must be strings")
            _check_plist_value(item, f"{path}.{key}", depth + 1)
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_plist_value(item, f"{path}[{i}]", depth + 1)
        return
    raise OptionError(f"{path}: {type(value).__name__} has no property list form")


def configuration_digest(configuration: Mapping[str, Any] | None) -> str:
    """Names one configuration (or none: "") so a change is noticed."""
    if configuration is None:
        return ""
    text = json.dumps(configuration, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def key_unsupported(
    request_type: str,
    key: str,
    platform: str | None,
    os_version: str | None,
    *,
    user_enrollment: bool = False,
) -> str | None:
    """Why this device would refuse ``key`` in ``request_type`` (Apple's schema), or None."""
    spec = command_spec(request_type)
    found = spec.key(key) if spec is not None else None
    if found is None or platform is None:
        return None
    return supports(
        cast(Any, found),
        cast(Platform, platform),
        os_version=os_version,
        user_enrollment=user_enrollment,
    )


def device_keys(
    request_type: str,
    payload: dict[str, Any],
    platform: str | None,
    os_version: str | None,
    *,
    user_enrollment: bool = False,
) -> list[str]:
    """Drop the optional keys (ManagementFlags, Configuration) this device does not take;
    one note per key dropped."""
    notes = []
    for key in ("ManagementFlags", "Configuration"):
        if key not in payload:
            continue
        reason = key_unsupported(
            request_type, key, platform, os_version, user_enrollment=user_enrollment
        )
        if reason is not None:
            del payload[key]
            notes.append(f"{key} left out: {reason}")
    return notes


def settings_command(bundle_id: str, configuration: Mapping[str, Any] | None) -> dict[str, Any]:
    """The Settings payload that sets (or, with None, removes) an installed managed app's
    configuration: Apple's ApplicationConfiguration item."""
    item: dict[str, Any] = {"Item": "ApplicationConfiguration", "Identifier": bundle_id}
    if configuration is not None:
        item["Configuration"] = dict(configuration)
    return {"Settings": [item]}
