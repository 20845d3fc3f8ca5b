"""App downloads for devices: ``GET /mdm/apps/<app_id>/manifest`` and ``.../file``.

The same identity rules as the check-in: the request is signed (``Mdm-Signature`` over the
body, empty for a GET) or arrives through the trusted proxy with the client certificate; the
certificate must chain to the device CA, be bound to a device whose enrollment is active, and
that device must be assigned the app (to all devices or through one of its tags). Anything
else is refused (403; an enrolled device asking for an unknown app or file gets 404, so an
unenrolled client learns nothing about the catalog). The manifest is a property list.
"""

from __future__ import annotations

import plistlib
from collections.abc import Mapping
from typing import cast

from flask import Blueprint, Response, current_app, request, send_file

from mdmserver.apps.service import AppsService
from mdmserver.logs import get_logger
from mdmserver.service.errors import DeviceForbidden
from mdmserver.storage.base import EnrollmentStatus
from mdmserver.web.runtime import device_authenticator, runtime

log = get_logger("apps.files")

bp = Blueprint("app_files", __name__)


def apps_service() -> AppsService:
    return runtime(current_app).apps


def _enrolled_device() -> str:
    """The device asking, once its identity and active enrollment are proven."""
    rt = runtime(current_app)
    headers = cast(Mapping[str, str], request.headers)  # case-insensitive, like the check-in's
    identity = device_authenticator(current_app).authenticate(
        headers, request.get_data(cache=True), request.remote_addr or ""
    )
    device_id = rt.storage.device_for_certificate(identity.fingerprint)
    if device_id is None:
        raise DeviceForbidden("the identity certificate is not bound to an enrolled device")
    if rt.storage.enrollment_status(device_id) != EnrollmentStatus.ACTIVE:
        raise DeviceForbidden("the device has no active enrollment")
    return device_id


def _check_assigned(app_id: str, device_id: str) -> None:
    if not apps_service().store.is_assigned(app_id, device_id):
        raise DeviceForbidden("this app is not assigned to the device")


@bp.get("/mdm/apps/<app_id>/manifest")
def manifest(app_id: str) -> Response:
    device_id = _enrolled_device()
    found = apps_service().store.get(app_id)
    if found is None or found.id != app_id or found.manifest is None:
        return Response("no such app\n", status=404, content_type="text/plain")
    _check_assigned(app_id, device_id)
    log.info("app_manifest_served", extra={"fields": {"app": app_id, "device_id": device_id}})
    return Response(plistlib.dumps(found.manifest), content_type="application/x-plist")


@bp.get("/mdm/apps/<app_id>/file")
def file(app_id: str) -> Response:
    device_id = _enrolled_device()
    service = apps_service()
    found = service.store.get(app_id)
    if found is None or found.id != app_id or found.file_name is None:
        return Response("no such app file\n", status=404, content_type="text/plain")
    _check_assigned(app_id, device_id)
    path = service.files.path(app_id, found.file_name)
    if not path.is_file():
        return Response("no such app file\n", status=404, content_type="text/plain")
    log.info("app_file_served", extra={"fields": {"app": app_id, "device_id": device_id}})
    return send_file(path, mimetype="application/octet-stream", conditional=True)
