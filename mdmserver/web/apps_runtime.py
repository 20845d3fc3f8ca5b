"""Wiring the apps feature into one app: its store, file folder and admin service (issue #17).

Called once by the app factory, which also registers the desired-state hooks (enrollment and
``ManagedApplicationList`` answers reconcile the device's apps); the admin routes
(``web/api/apps.py``) and the device download routes (``web/app_files.py``) find the service
here.
"""

from __future__ import annotations

from flask import Flask, current_app

from mdmserver.apps.reconcile import AppReconciler
from mdmserver.apps.service import AppsService
from mdmserver.storage.app_store import AppFiles, AppStore
from mdmserver.web.runtime import runtime

EXTENSION = "mdmserver.apps"


def install_apps(app: Flask) -> AppsService:
    rt = runtime(app)
    service = AppsService(
        AppStore(rt.engine),
        AppFiles(rt.config.home / "apps"),
        server_url=rt.config.server_url,
        token_file=rt.config.home / "vpp.token",
        vpp_url=rt.config.vpp_url,
    )
    AppReconciler(service.store, rt.storage, rt.config.server_url).register(rt.hooks)
    app.extensions[EXTENSION] = service
    return service


def apps_service() -> AppsService:
    service: AppsService = current_app.extensions[EXTENSION]
    return service
