"""``/api/v1/apps``: the app catalog, its assignments, and Apps and Books licenses.

Thin handlers over :class:`mdmserver.apps.service.AppsService`; nested under the admin API
blueprint (Bearer key of scope ``admin``). Every mutating route is one audit row
(``@audited``), refusals included; a refused call stores nothing.

    GET    /apps                              the catalog
    POST   /apps                              an App Store app, or an app referenced by URL
    POST   /apps/upload?kind=&name=...        an .ipa or .pkg (the body is the file)
    GET    /apps/<app>                        one app (by id or name), with its manifest
    DELETE /apps/<app>
    POST   /apps/<app>/assignments            {"target": "all"|"tag:x", "behaviour": ...};
                                              a required one is rolled out at once
                                              ("rollout": devices queued, or scheduled)
    DELETE /apps/<app>/assignments/<target>
    GET    /apps/<app>/devices                per-device state: pending, installing, installed,
                                              failed (with the ErrorChain), needs_license,
                                              removing
    GET    /apps/<app>/licenses               Apps and Books licenses by serial
    POST   /apps/<app>/licenses               {"serials": [...]}: assign, follow the event
    POST   /apps/<app>/licenses/revoke        {"serials": [...]}: revoke, follow the event
    GET    /apps/vpp/token                    the content token's organisation and expiry
    PUT    /apps/vpp/token                    upload a content token (the .vpptoken text)
    GET    /apps/vpp/assets                   assets and license counts, as last synced
    POST   /apps/vpp/assets/sync              fetch them from Apple now
    GET    /apps/vpp/events/<event_id>        one event as recorded
    POST   /apps/vpp/events/<event_id>/follow poll Apple until the event completes
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from mdmserver.admin.errors import BadRequest, NotFound
from mdmserver.apps.reconcile import retry_at
from mdmserver.apps.service import AppsService, describe_app, license_rows
from mdmserver.web.api import audited, json_body
from mdmserver.web.runtime import runtime

bp = Blueprint("apps", __name__)


def apps_service() -> AppsService:
    return runtime(current_app).apps


def _app_json(key: str, status: int = 200, **more: Any) -> Response:
    service = apps_service()
    found = service.get(key)
    response = jsonify(
        {**describe_app(found, {}, service.store.assignment_details(found.id)), **more}
    )
    response.status_code = status
    return response


@bp.get("/apps")
def list_apps() -> Response:
    service = apps_service()
    return jsonify(
        apps=[
            describe_app(a, {}, service.store.assignment_details(a.id)) for a in service.store.all()
        ]
    )


@bp.post("/apps")
@audited("app.create")
def create_app() -> Response:
    return _app_json(apps_service().create(json_body()).id, 201)


@bp.post("/apps/upload")
@audited("app.upload")
def upload_app() -> Response:
    created = apps_service().upload(request.args.to_dict(), request.get_data(cache=True))
    return _app_json(created.id, 201)


@bp.get("/apps/<key>")
def get_app(key: str) -> Response:
    return _app_json(key)


@bp.delete("/apps/<key>")
@audited("app.delete")
def delete_app(key: str) -> Response:
    removed = apps_service().delete(key)
    return jsonify(deleted=removed.id)


@bp.post("/apps/<key>/assignments")
@audited("app.assign")
def assign_app(key: str) -> Response:
    done = apps_service().assign(key, json_body())
    rollout = done.rollout.as_json() if done.rollout is not None else None
    return _app_json(done.app.id, rollout=rollout)


@bp.delete("/apps/<key>/assignments/<target>")
@audited("app.unassign")
def unassign_app(key: str, target: str) -> Response:
    return _app_json(apps_service().unassign(key, target).id)


@bp.get("/apps/<key>/devices")
def device_states(key: str) -> Response:
    service = apps_service()
    found = service.get(key)
    rows = service.store.app_states(found.id)
    for row in rows:
        row["retry_at"] = retry_at(row) if row["status"] == "failed" else None
        sent = row["configuration"]
        if sent is not None:
            sent["retry_at"] = retry_at(sent) if sent["status"] == "failed" else None
    return jsonify(app=found.id, devices=_jsonable(rows))


@bp.get("/apps/<key>/licenses")
def licenses(key: str) -> Response:
    service = apps_service()
    found = service.get(key)
    return jsonify(app=found.id, licenses=license_rows(service.store, found.adam_id))


@bp.post("/apps/<key>/licenses")
@audited("app.licenses.assign")
def assign_licenses(key: str) -> Response:
    return _event(apps_service().assign_licenses(key, json_body()))


@bp.post("/apps/<key>/licenses/revoke")
@audited("app.licenses.revoke")
def revoke_licenses(key: str) -> Response:
    return _event(apps_service().revoke_licenses(key, json_body()))


@bp.get("/apps/vpp/token")
def token() -> Response:
    return jsonify(apps_service().token_summary())


@bp.put("/apps/vpp/token")
@audited("vpp.token")
def put_token() -> Response:
    body = json_body()
    if not isinstance(body, dict) or set(body) != {"token"} or not isinstance(body["token"], str):
        raise BadRequest('expected {"token": "<the .vpptoken file\'s text>"}')
    service = apps_service()
    service.install_token(body["token"])
    return jsonify(service.token_summary())


@bp.get("/apps/vpp/assets")
def assets() -> Response:
    return jsonify(assets=_jsonable(apps_service().store.assets()))


@bp.post("/apps/vpp/assets/sync")
@audited("vpp.sync")
def sync_assets() -> Response:
    return jsonify(assets=_jsonable(apps_service().sync_assets()))


@bp.get("/apps/vpp/events/<event_id>")
def event(event_id: str) -> Response:
    found = apps_service().store.event(event_id)
    if found is None:
        raise NotFound(f"no Apps and Books event {event_id!r}")
    return jsonify(_jsonable(found))


@bp.post("/apps/vpp/events/<event_id>/follow")
@audited("vpp.follow")
def follow(event_id: str) -> Response:
    return _event(apps_service().follow(event_id))


def _event(found: dict[str, Any]) -> Response:
    response = jsonify(_jsonable(found))
    response.status_code = 200 if found["status"] != "PENDING" else 202
    return response


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
