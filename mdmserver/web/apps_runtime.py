"""Wiring the apps feature into one app: its store, file folder and admin service (issue #17).

Called once by the app factory, which also registers the desired-state hooks (enrollment and
``ManagedApplicationList`` answers reconcile the device's apps); the admin routes
(``web/api/apps.py``) and the device download routes (``web/app_files.py``) find the service
here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from flask import Flask, current_app

from mdmserver.apps.declarative import AppDeclarations
from mdmserver.apps.reconcile import AppReconciler, chain_status
from mdmserver.apps.service import AppsService
from mdmserver.logs import get_logger
from mdmserver.metrics.registry import Sample
from mdmserver.storage.app_store import AppFiles, AppStore
from mdmserver.web.runtime import runtime

EXTENSION = "mdmserver.apps"
DDM_EXTENSION = "mdmserver.ddm"
INVENTORY_EXTENSION = "mdmserver.inventory"
log = get_logger("apps")


def install_apps(app: Flask) -> AppsService:
    rt = runtime(app)
    store = AppStore(rt.engine)
    ddm = app.extensions.get(DDM_EXTENSION)  # installed first (install_ddm)
    declarations = AppDeclarations(store, ddm.service) if ddm is not None else None
    service = AppsService(
        store,
        AppFiles(rt.config.home / "apps"),
        server_url=rt.config.server_url,
        token_file=rt.config.home / "vpp.token",
        vpp_url=rt.config.vpp_url,
        on_assignments=declarations.publish if declarations is not None else None,
    )
    reconciler = AppReconciler(service.store, rt.storage, rt.config.server_url, declarations)
    reconciler.register(rt.hooks)
    reconciler.register_app_state(rt.hooks)
    inventory = app.extensions.get(INVENTORY_EXTENSION)  # installed first (install_trust)
    if inventory is not None:  # compliance remediation reinstalls required apps through it
        inventory.compliance.remediator.apps = reconciler
    if ddm is not None:  # app.managed.list status feeds the per-device app state too
        ddm.service.on_status = chain_status(ddm.service.on_status, reconciler.on_ddm_status)
    rt.metrics.register(
        "mdm_vpp_token_days_left",
        "gauge",
        "Days until the Apps and Books content token expires (licenses stop after).",
        lambda: _days_left(service),
    )
    summary = service.token_summary()
    for warning in summary["warnings"] if summary["installed"] else ():
        log.warning("vpp_token_expiring", extra={"fields": {"detail": warning}})
    app.extensions[EXTENSION] = service
    return service


def _days_left(service: AppsService) -> Iterable[Sample]:
    # Read at scrape time: a token replaced with `apps vpp-token` shows at once.
    token = service.token()
    if token is None:
        return []
    left = (token.expires_at - datetime.now(UTC)).total_seconds() / 86400
    return [({}, round(left, 2))]


def apps_service() -> AppsService:
    service: AppsService = current_app.extensions[EXTENSION]
    return service
