"""``GET /mdm/ddm/assets/<id>``: assets this server hosts, served to their devices only.

The device fetches an asset's DataURL with MDM semantics (Authentication Type "MDM"): the
same identity proof as a check-in, a ``Mdm-Signature`` (over the empty body) or the client
certificate from the TLS proxy, checked by the same DeviceAuthenticator. The certificate
must be bound to a device, and that device's declaration set must hold the asset; anything
else is refused alike (403), so a URL tells a stranger nothing. Never a 401.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from flask import Blueprint, Response, current_app, request

from mdmserver.ddm.assets import ASSET_PATH, asset_for
from mdmserver.logs import get_logger
from mdmserver.service.errors import DeviceForbidden
from mdmserver.web.runtime import device_authenticator, runtime

log = get_logger("ddm")
bp = Blueprint("ddm_assets", __name__)


@bp.get(f"{ASSET_PATH}/<asset_id>")
def asset(asset_id: str) -> Response:
    rt = runtime(current_app)
    headers = cast(Mapping[str, str], request.headers)  # case-insensitive, as device_auth needs
    device_request = device_authenticator(current_app).authenticate(
        headers, b"", request.remote_addr or ""
    )
    device_id = rt.storage.device_for_certificate(device_request.fingerprint)
    if device_id is None:
        raise DeviceForbidden("identity certificate is not bound to a device")
    try:
        content_type, data = asset_for(rt.ddm.service, asset_id, device_id)
    except LookupError:
        log.info("asset_refused", extra={"fields": {"asset": asset_id, "device_id": device_id}})
        raise DeviceForbidden("this asset is not assigned to this device") from None
    response = Response(data, content_type=content_type)
    response.headers["Cache-Control"] = "private, no-store"
    return response
