"""How a simulated device answers one command: its status, the keys it returns, what changes.

Profiles are tracked (InstallProfile adds, RemoveProfile removes, ProfileList reports them), so a
server's idea of a device's profiles can be checked against what the device says; apps
likewise (the app commands are answered by :class:`mdmserver.simulator.apps.DeviceApps`).
Unknown request types get the error real devices send (MCMDMErrorDomain 12021, as captured from iOS
and macOS); configured NotNow and error rates apply to every known command except EraseDevice.
"""

from __future__ import annotations

import plistlib
import random
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import cms

from mdmserver.simulator import payloads
from mdmserver.simulator.apps import COMMANDS as APP_COMMANDS
from mdmserver.simulator.apps import DeviceApps, Fetch
from mdmserver.simulator.catalog import DeviceSpec

SUPPORTED = frozenset(
    {
        "DeviceInformation",
        "SecurityInfo",
        "ProfileList",
        "InstallProfile",
        "RemoveProfile",
        "DeviceLock",
        "EraseDevice",
        "InstalledApplicationList",
        "DeclarativeManagement",  # acknowledged; the device then syncs (simulator/ddm.py)
        *APP_COMMANDS,
    }
)
# Injected failures, per command: (domain, code, description) in the form devices send them.
FAILURES = {
    "InstallProfile": ("MCInstallationErrorDomain", 4001, "Profile Installation Failed"),
    "RemoveProfile": ("MCProfileErrorDomain", 1009, "The profile could not be removed."),
    "DeviceLock": ("MCMDMErrorDomain", 12025, "The device could not be locked."),
    "InstallApplication": ("MCMDMErrorDomain", 12064, "The app could not be installed."),
}
GENERIC_FAILURE = ("MCMDMErrorDomain", 12078, "The command could not be completed.")


@dataclass
class Behaviour:
    """How cooperative the fleet is: share of commands answered NotNow, or with an error."""

    notnow_rate: float = 0.0
    error_rate: float = 0.0


@dataclass
class Reply:
    status: str
    keys: dict[str, Any] = field(default_factory=dict)
    wipe: bool = False  # the device erases itself once this answer is delivered


def error_chain(domain: str, code: int, text: str) -> list[dict[str, Any]]:
    return [
        {
            "ErrorCode": code,
            "ErrorDomain": domain,
            "LocalizedDescription": text,
            "USEnglishDescription": text,
        }
    ]


def answer(
    spec: DeviceSpec,
    profiles: dict[str, dict[str, Any]],
    command: dict[str, Any],
    behaviour: Behaviour,
    rng: random.Random,
    apps: DeviceApps | None = None,
    fetch: Fetch | None = None,
) -> Reply:
    """The reply to ``command`` (the ``Command`` dictionary); updates ``profiles`` (and
    ``apps``, which downloads through ``fetch``) in place. Without ``apps`` the app commands
    are answered for a device that has only its preinstalled apps and can download nothing."""
    request_type = str(command.get("RequestType", ""))
    if request_type not in SUPPORTED:
        text = f"“{request_type}” is not a valid request type."
        return Reply("Error", {"ErrorChain": error_chain("MCMDMErrorDomain", 12021, text)})
    if request_type != "EraseDevice":
        if rng.random() < behaviour.notnow_rate:
            return Reply("NotNow")
        if rng.random() < behaviour.error_rate:
            domain, code, text = FAILURES.get(request_type, GENERIC_FAILURE)
            return Reply("Error", {"ErrorChain": error_chain(domain, code, text)})
    if request_type in APP_COMMANDS:
        device_apps = apps if apps is not None else DeviceApps(spec)
        reply = device_apps.answer(command, fetch or _no_downloads)
        return Reply(reply.status, reply.keys)
    return _HANDLERS[request_type](spec, profiles, command)


def _no_downloads(_path: str) -> tuple[int, bytes]:
    return 404, b""


def _device_information(spec: DeviceSpec, _p: dict, command: dict[str, Any]) -> Reply:
    queries = command.get("Queries")
    queries = [q for q in queries if isinstance(q, str)] if isinstance(queries, list) else None
    return Reply("Acknowledged", {"QueryResponses": payloads.device_information(spec, queries)})


def _security_info(spec: DeviceSpec, _p: dict, _c: dict[str, Any]) -> Reply:
    return Reply("Acknowledged", {"SecurityInfo": payloads.security_info(spec)})


def _profile_list(_s: DeviceSpec, profiles: dict[str, dict[str, Any]], _c: dict) -> Reply:
    return Reply("Acknowledged", {"ProfileList": [dict(p) for p in profiles.values()]})


def _install_profile(_s: DeviceSpec, profiles: dict[str, dict[str, Any]], command: dict) -> Reply:
    profile = read_profile(command.get("Payload"))
    identifier = profile.get("PayloadIdentifier") if profile else None
    if profile is None or not isinstance(identifier, str):
        text = "The profile could not be read: it is malformed."
        return Reply("Error", {"ErrorChain": error_chain("MCProfileErrorDomain", 1000, text)})
    profiles[identifier] = {
        "PayloadIdentifier": identifier,
        "PayloadUUID": profile.get("PayloadUUID", ""),
        "PayloadDisplayName": profile.get("PayloadDisplayName", identifier),
        "PayloadVersion": profile.get("PayloadVersion", 1),
        "PayloadOrganization": profile.get("PayloadOrganization", ""),
        "IsManaged": True,
        "IsEncrypted": "EncryptedPayloadContent" in profile,
        "HasRemovalPasscode": False,
        "PayloadRemovalDisallowed": bool(profile.get("PayloadRemovalDisallowed", False)),
        "PayloadContent": [
            {
                "PayloadType": p.get("PayloadType", ""),
                "PayloadIdentifier": p.get("PayloadIdentifier", ""),
            }
            for p in profile.get("PayloadContent", [])
            if isinstance(p, dict)
        ],
    }
    return Reply("Acknowledged")


def _remove_profile(_s: DeviceSpec, profiles: dict[str, dict[str, Any]], command: dict) -> Reply:
    identifier = command.get("Identifier")
    if not isinstance(identifier, str):
        text = "No 'Identifier' in 'RemoveProfile' command <MDMClientError:97>"
        return Reply("Error", {"ErrorChain": error_chain("MDMClientError", 97, text)})
    if profiles.pop(identifier, None) is None:
        text = f"The profile “{identifier}” is not managed by MDM."
        return Reply("Error", {"ErrorChain": error_chain("MCMDMErrorDomain", 12013, text)})
    return Reply("Acknowledged")


def _device_lock(spec: DeviceSpec, _p: dict, command: dict[str, Any]) -> Reply:
    if spec.platform == "macOS" and not command.get("PIN"):
        text = "A PIN is required to lock this Mac."
        return Reply("Error", {"ErrorChain": error_chain("MDMClientError", 97, text)})
    return Reply("Acknowledged")


def _erase_device(_s: DeviceSpec, _p: dict, _c: dict[str, Any]) -> Reply:
    return Reply("Acknowledged", wipe=True)


_HANDLERS = {
    "DeviceInformation": _device_information,
    "SecurityInfo": _security_info,
    "ProfileList": _profile_list,
    "InstallProfile": _install_profile,
    "RemoveProfile": _remove_profile,
    "DeviceLock": _device_lock,
    "EraseDevice": _erase_device,
    "DeclarativeManagement": lambda _s, _p, _c: Reply("Acknowledged"),
}


def read_profile(data: Any) -> dict[str, Any] | None:
    """The profile dictionary inside an InstallProfile payload: XML, or CMS-signed XML."""
    if not isinstance(data, bytes | bytearray) or not data:
        return None
    raw = bytes(data)
    try:
        if raw.lstrip()[:1] != b"<":
            info = cms.ContentInfo.load(raw)
            raw = info["content"]["encap_content_info"]["content"].native
        profile = plistlib.loads(raw)
    except Exception:
        return None
    return profile if isinstance(profile, dict) else None
