"""Turn a profile dictionary into the exact bytes a device installs.

PayloadUUIDs are deterministic: the top-level one is a UUIDv5 of the profile identifier and a
SHA-256 of the content (with the UUID itself left out). So the same content always builds the
same bytes (one signature serves every rebuild), and a device's ProfileList answer says by its
PayloadUUID alone whether it runs the current revision: a changed profile has a new UUID.
Inner payloads keep any PayloadUUID they were given (other payloads may point at it) and get a
deterministic one otherwise. The top-level PayloadVersion is 1, the only value Apple allows.
"""

from __future__ import annotations

import copy
import hashlib
import plistlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mdmserver.profiles.template import LOCAL_ID, PLACEHOLDER, TemplateError

# A fixed namespace so the same identifier and content give the same UUIDs on every server.
NAMESPACE = uuid.UUID("0b6f3c52-6a8e-4a43-9a55-3d1e5e2f7c10")
SCOPES = ("System", "User")


@dataclass(frozen=True)
class BuiltProfile:
    identifier: str
    payload_uuid: str
    content: bytes  # XML plist, keys sorted; may still hold ${device.*} placeholders
    digest: str  # SHA-256 (hex) of the content
    profile: Mapping[str, Any]

    @property
    def payload_types(self) -> list[str]:
        return [p.get("PayloadType", "") for p in self.profile.get("PayloadContent", [])]


def dumps(profile: Mapping[str, Any]) -> bytes:
    """Canonical XML plist: sorted keys, so equal content is equal bytes."""
    return plistlib.dumps(dict(profile), fmt=plistlib.FMT_XML, sort_keys=True)


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts))).upper()


def build(
    profile: Mapping[str, Any],
    identifier: str | None = None,
    *,
    scope: str | None = None,
) -> BuiltProfile:
    """Fill PayloadType/Identifier/UUID/Version (and PayloadScope when given) everywhere.

    `identifier` overrides the profile's PayloadIdentifier; one of the two must exist."""
    data: dict[str, Any] = copy.deepcopy(dict(profile))
    ident = identifier or data.get("PayloadIdentifier")
    if not isinstance(ident, str) or not ident:
        raise TemplateError("PayloadIdentifier: a profile needs an identifier")
    if scope is not None and scope not in SCOPES:
        raise TemplateError(f"PayloadScope: {scope!r} is not one of {list(SCOPES)}")
    data["PayloadIdentifier"] = ident
    data["PayloadType"] = "Configuration"
    data["PayloadVersion"] = 1
    data.setdefault("PayloadDisplayName", ident)
    if scope is not None:
        data["PayloadScope"] = scope
    data.pop("PayloadUUID", None)
    contents = data.get("PayloadContent")
    locals_: dict[str, int] = {}
    if isinstance(contents, list):
        for index, payload in enumerate(contents):
            if not isinstance(payload, dict):
                continue
            local = str(payload.pop(LOCAL_ID, index))
            if local in locals_:
                raise TemplateError(f"PayloadContent[{index}]: duplicate payload id {local!r}")
            locals_[local] = index
            payload.setdefault("PayloadIdentifier", f"{ident}.{local}")
            payload.setdefault("PayloadVersion", 1)
    digest = hashlib.sha256(dumps(data)).hexdigest()
    data["PayloadUUID"] = _uuid(ident, digest)
    uuids: dict[str, str] = {}
    if isinstance(contents, list):
        for local, index in locals_.items():
            payload = contents[index]
            if not isinstance(payload.get("PayloadUUID"), str):
                payload["PayloadUUID"] = _uuid(str(payload["PayloadIdentifier"]), digest)
            uuids[local] = payload["PayloadUUID"]
    resolved = _resolve_uuids(data, uuids, "")
    content = dumps(resolved)
    return BuiltProfile(
        identifier=ident,
        payload_uuid=resolved["PayloadUUID"],
        content=content,
        digest=hashlib.sha256(content).hexdigest(),
        profile=resolved,
    )


def _resolve_uuids(value: Any, uuids: Mapping[str, str], where: str) -> Any:
    """Replace ``${uuid:<id>}`` with the PayloadUUID of the payload whose id is <id>."""
    if isinstance(value, str):

        def one(match: Any) -> str:
            name = match.group(1)
            if not name.startswith("uuid:"):
                return str(match.group(0))
            local = name[len("uuid:") :]
            if local not in uuids:
                raise TemplateError(f"{where or 'profile'}: no payload has the id {local!r}")
            return uuids[local]

        return PLACEHOLDER.sub(one, value)
    if isinstance(value, dict):
        return {
            k: _resolve_uuids(v, uuids, f"{where}.{k}" if where else k) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_resolve_uuids(v, uuids, f"{where}[{i}]") for i, v in enumerate(value)]
    return value
