"""``GET /api/v1/devices`` (filters, keyset pages), ``GET /api/v1/devices/<id>`` and its
``/inventory``; a device's identity: ``POST /api/v1/devices/<id>/allow-reenroll`` and
``POST /api/v1/devices/<id>/revoke``."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from mdmserver.admin import views as out
from mdmserver.admin.devices import FILTER_FIELDS, encode_cursor, parse_filter, parse_limit
from mdmserver.admin.errors import BadRequest
from mdmserver.admin.identities import parse_window
from mdmserver.web.api import actor, admin, audited, json_body

bp = Blueprint("devices", __name__)
_PAGING = ("limit", "cursor")


@bp.get("/devices")
def list_devices() -> Response:
    unknown = sorted(set(request.args) - set(FILTER_FIELDS) - set(_PAGING))
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown query parameter")
    raw: dict[str, object] = {k: request.args[k] for k in FILTER_FIELDS if k in request.args}
    if "tag" in request.args:
        raw["tag"] = request.args.getlist("tag")
    page = admin().devices.list(
        parse_filter(raw), parse_limit(request.args.get("limit")), request.args.get("cursor")
    )
    return jsonify(
        devices=[out.device(d) for d in page.devices],
        next_cursor=encode_cursor(page.next_cursor),
    )


@bp.get("/devices/<ident>")
def show_device(ident: str) -> Response:
    return jsonify(out.device_detail(admin().devices.show(ident)))


@bp.get("/devices/<ident>/inventory")
def device_inventory(ident: str) -> Response:
    return jsonify(out.inventory(*admin().devices.inventory_of(ident)))


@bp.post("/devices/<ident>/allow-reenroll")
@audited("device.allow_reenroll")
def allow_reenroll(ident: str) -> Response:
    """Optional body ``{"for": "24h"}``: how long the one-time allowance lasts."""
    window = None
    if request.get_data(cache=True).strip():
        data = json_body()
        if not isinstance(data, dict):
            raise BadRequest('expected a JSON object such as {"for": "24h"}')
        unknown = sorted(set(data) - {"for"})
        if unknown:
            raise BadRequest(f"{unknown[0]}: unknown field; use 'for'")
        window = data.get("for")
        if window is not None and not isinstance(window, str):
            raise BadRequest("for: must be a duration such as 24h, 30m or 2d")
    allowance = admin().identities.allow_reenroll(ident, parse_window(window), actor=actor())
    return jsonify(device_id=allowance.device_id, allowed_until=out.when(allowance.allowed_until))


@bp.post("/devices/<ident>/revoke")
@audited("device.revoke")
def revoke_device(ident: str) -> Response:
    revocation = admin().identities.revoke(ident, actor=actor())
    return jsonify(device_id=revocation.device_id, revoked_serials=revocation.revoked_serials)
