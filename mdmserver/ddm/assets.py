"""Assets this server hosts: their bytes, and who may fetch them.

``put_asset_data`` stores the bytes and points the asset declaration at a URL on this server
(``/mdm/ddm/assets/<id>``, Authentication "MDM": the device fetches it with its identity, as
it checks in). ``asset_for`` answers only a device whose declaration set (on any of its
channels) holds the asset. Secrets (identities, passwords) are not hosted: an admin gives
those as URLs of their own.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from mdmserver.catalog.validate import ValidationError
from mdmserver.ddm.service import DDMService, Saved
from mdmserver.ddm.validate import DeclarationRefused

ASSET_PATH = "/mdm/ddm/assets"
HOSTED_ASSETS = frozenset({"com.apple.asset.data", "com.apple.asset.credential.certificate"})
MAX_ASSET_BYTES = 4 * 1024 * 1024


def _now() -> datetime:
    return datetime.now(UTC)


def put_asset_data(
    service: DDMService,
    identifier: str,
    declaration_type: str,
    content_type: str,
    data: bytes,
    base_url: str,
) -> Saved:
    """Host ``data`` here and make the asset declaration point at it: a URL only the
    devices whose set holds this asset can fetch, with their identity (Authentication
    MDM). Secrets (identities, passwords) are not hosted: give those as your own URLs."""
    if declaration_type not in HOSTED_ASSETS:
        raise DeclarationRefused(
            [ValidationError("Type", f"hosted data is for {', '.join(sorted(HOSTED_ASSETS))}")]
        )
    if not data or len(data) > MAX_ASSET_BYTES:
        raise DeclarationRefused([ValidationError("data", f"1 to {MAX_ASSET_BYTES} bytes")])
    digest = hashlib.sha256(data).hexdigest()
    asset_id = secrets.token_hex(16)  # unguessable, though the URL alone opens nothing
    reference = {
        "DataURL": f"{base_url.rstrip('/')}{ASSET_PATH}/{asset_id}",
        "ContentType": content_type,
        "Size": len(data),
        "Hash-SHA-256": digest,
    }
    payload = {"Reference": reference, "Authentication": {"Type": "MDM"}}
    body = {"Type": declaration_type, "Payload": payload}
    saved = service.put(identifier, body)  # validated and stored first: a refusal keeps nothing
    service.store.put_asset(asset_id, identifier, content_type, data, digest, _now())
    return saved


def asset_for(service: DDMService, asset_id: str, device_id: str) -> tuple[str, bytes]:
    """A hosted asset's content type and bytes, for a device whose set holds it (on any
    of its channels); LookupError otherwise, the same whether it exists or not."""
    row = service.store.asset(asset_id)
    if row is None:
        raise LookupError("no such asset")
    declaration = service.store.get(row.identifier)
    if declaration is None or not declaration.payload.get("Reference", {}).get(
        "DataURL", ""
    ).endswith(f"/{asset_id}"):
        raise LookupError("no such asset")  # replaced by a newer upload
    for enrollment_id in service.store.device_channels(device_id):
        ctx = service.store.channel(enrollment_id)
        if ctx is not None and any(
            i.identifier == row.identifier for i in service.channel_set(ctx)
        ):
            return row.content_type, bytes(row.data)
    raise LookupError("no such asset")
