"""Wiring Declarative Device Management into one app: store, service, hooks, status feed.

Called once by the app factory, after inventory and compliance (install_trust): status
reports feed them. The service answers DeclarativeManagement check-ins (through the same
service stack, CertAuth included, as every check-in), turns DDM on for channels that enroll,
and syncs channels after admin changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from mdmserver.ddm.feed import InventoryFeed
from mdmserver.ddm.service import DDMService
from mdmserver.storage.ddm_store import DDMStore
from mdmserver.web.runtime import runtime

EXTENSION = "mdmserver.ddm"
INVENTORY = "mdmserver.inventory"


@dataclass
class DDMRuntime:
    store: DDMStore
    service: DDMService


def install_ddm(app: Flask) -> DDMRuntime:
    rt = runtime(app)
    store = DDMStore(rt.engine)
    inventory = app.extensions.get(INVENTORY)
    pusher = rt.pusher
    service = DDMService(
        store,
        rt.storage,
        push=pusher.request_push if pusher is not None else None,
        on_status=InventoryFeed(inventory) if inventory is not None else None,
    )
    service.ensure_builtin()
    rt.hooks.serve_declarative(service.handle)
    rt.hooks.on_enrolled(service.on_enrolled)
    installed = DDMRuntime(store, service)
    app.extensions[EXTENSION] = installed
    return installed


def ddm_runtime(app: Flask) -> DDMRuntime:
    return app.extensions[EXTENSION]
