"""``GET /api/v1/devices`` (filters, keyset pages), ``GET /api/v1/devices/<id>`` and its
``/inventory``."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from mdmserver.service.admin import views as out
from mdmserver.service.admin.devices import FILTER_FIELDS, encode_cursor, parse_filter, parse_limit
from mdmserver.service.admin.errors import BadRequest
from mdmserver.web.api import admin

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
